"""Extra stacks for one test session, in the pytest-postgresql factory style.

:class:`StackFactory` starts the stack a :class:`StackRequest` asks for, each in its own folder.
An equal request gets the running stack back (its fault knobs reset to what it was asked with),
unless one of its processes has died, which starts a fresh one. :meth:`StackFactory.close`
stops them all. The pytest glue turns a fixture call into a request
(``pytest_eng5.stack_requests``).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_eng5.stack.request import StackRequest
from pytest_eng5.stack.session import StackContext, running_stack


@dataclass
class _Running:
    request: StackRequest
    context: StackContext
    exit_stack: ExitStack

    def alive(self) -> bool:
        infra = self.context.infrastructure
        handles = [*(infra.processes if infra is not None else ())]
        if self.context.services is not None:
            handles.extend(self.context.services.processes)
        return all(handle.is_running() for handle in handles)


class StackFactory:
    """``factory.get(request)``: a running stack for the request, the same one while it lives.

    ``root`` holds one folder per started stack (its work directory and its logs).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._running: dict[str, _Running] = {}
        self._started = 0

    def get(self, request: StackRequest) -> StackContext:
        """A running stack for ``request``; the same one for an equal request."""
        key = request.key()
        running = self._running.get(key)
        if running is not None and not running.alive():
            self._stop(self._running.pop(key))
            running = None
        if running is None:
            running = self._start(request)
            self._running[key] = running
        if running.context.services is not None:
            running.context.clear_faults()
            for service, knobs in request.faults.items():
                running.context.set_faults(service, **knobs)
        return running.context

    def _start(self, request: StackRequest) -> _Running:
        self._started += 1
        folder = self.root / f"{self._started:02d}-{request.label()}"
        config = replace(request.config, workdir=folder / "work", log_dir=folder / "logs")
        exit_stack = ExitStack()
        try:
            context = exit_stack.enter_context(running_stack(replace(request, config=config)))
        except BaseException:
            exit_stack.close()
            raise
        return _Running(request, context, exit_stack)

    def stop(self, stack: StackContext) -> None:
        """Stop one stack now (e.g. at the end of the module that needed it)."""
        for key, running in list(self._running.items()):
            if running.context is stack:
                self._stop(self._running.pop(key))
                return

    def _stop(self, running: _Running) -> None:
        running.exit_stack.close()

    def close(self) -> None:
        """Stop every stack still running, newest first; each stop is bounded by the stack."""
        errors: list[BaseException] = []
        while self._running:
            _, running = self._running.popitem()
            try:
                self._stop(running)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

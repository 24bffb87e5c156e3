"""How a reference service process is told its settings (the stack starts it, the service
reads them): secrets travel in these environment variables, never on the command line."""

from __future__ import annotations

#: PostgreSQL DSN of the reference database (may carry a password)
REFERENCE_DSN_ENV = "ENG5_REFERENCE_DSN"
#: the Content Service's fault-knob database when its content lives elsewhere
REFERENCE_FAULTS_DSN_ENV = "ENG5_REFERENCE_FAULTS_DSN"

"""Admin of the mailing app."""

# Inbound events (issue 6) register their own admin classes.
import mailing.inbound_admin  # noqa: E402, F401

"""Event-source triggers: sources pull messages and a sink commits them as tasks before the
source acknowledges them (`base`); `runner` keeps one source running per enabled trigger."""

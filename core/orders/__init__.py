"""The order pipeline's domain: one state machine, orders recorded before they are sent."""

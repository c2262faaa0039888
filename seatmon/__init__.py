"""seatmon: a seat monitor for customer-service call centres."""

__version__ = "0.1.0"

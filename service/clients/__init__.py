"""Clients of the REST service that hold keys on their own tokens: the counter station, the phone, the kiosk."""

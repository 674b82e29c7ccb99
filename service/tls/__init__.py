"""TLS for `koshin serve --tls`: server credentials on the token, and the stunnel terminator that uses them."""

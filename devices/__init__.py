"""The simulated world around the service: the cards, phones, kiosks and counter stations people hold or
use, each a set of PKCS#11 tokens (one per credential) with the capabilities of its kind (``profiles/tokens``),
key injection from a station into a card, key attestation by a phone's secure element, and the clients that
talk to the REST service. Nothing in ``service/`` (but its CLI) imports this package."""

"""CA core of koshin: everything between an accepted request and a signed certificate."""

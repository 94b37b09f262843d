"""The only package that imports twilio: signatures, TwiML helpers, and the outbound transport."""

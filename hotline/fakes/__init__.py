"""Local stand-ins for services outside the hotline (Twilio's REST API), for tests, benchmarks
and staging. They speak the real protocol over HTTP; none of our own code is replaced."""

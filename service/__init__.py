"""sigmalab service: HTTP API, job store, Ray dispatcher, scheduler, client and CLI."""

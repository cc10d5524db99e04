"""The API's routes, one router per domain, each a few lines over the library (see ``create_app``)."""

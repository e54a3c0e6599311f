"""The web console's static files (HTML, CSS, JS modules), served at /console/ by api.console_routes."""

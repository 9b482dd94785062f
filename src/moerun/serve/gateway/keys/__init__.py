"""API keys managed live: the /key/* routes (`admin`) and every replica's view of the
database's keys (`live`). Imports the gateway's config and ASGI helpers and `moerun.store`."""

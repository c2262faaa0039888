# Host-side tools: server launchers, technician tools.

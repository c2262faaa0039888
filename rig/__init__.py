# The test and demo rig: real server launchers, a load generator that behaves
# like desk units, a generator of a site's data. Not shipped to technicians
# (their commands are in tools/).

# Project code shared by the desk-unit firmware and the host: the wire protocol.

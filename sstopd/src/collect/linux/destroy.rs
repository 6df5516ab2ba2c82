//! sock_diag destroy multicast: final counters of sockets that closed between dumps. (in progress)

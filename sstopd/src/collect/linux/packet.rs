//! AF_PACKET capture with a classic BPF filter; bytes per 5-tuple. (in progress)

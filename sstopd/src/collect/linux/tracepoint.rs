//! `sock:inet_sock_set_state` via perf_event_open: who connected, named at connect time. (in progress)

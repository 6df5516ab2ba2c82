//! /proc/net/dev counters and the default route from /proc/net/route, /proc/net/ipv6_route. (in progress)

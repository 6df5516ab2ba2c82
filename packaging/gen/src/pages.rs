//! Hand-written man page sections that clap cannot know: files, environment, capabilities,
//! keys. roff: `\-` is a real minus (options), `\fB..\fR` bold, `\fI..\fR` italic.

pub const SSTOP_EXTRA: &str = r#".SH KEYS
.TP
\fBj k\fR, \fBUp Down\fR, \fBPgUp PgDn\fR, \fBCtrl\-U Ctrl\-D\fR, \fBg G\fR, \fBHome End\fR
Move the selection.
.TP
\fBEnter\fR, \fBEsc\fR
Open the selected process's connections; back.
.TP
\fBs\fR
Sort: rate, down, up, pid, name, connections.
.TP
\fB/\fR
Filter by name, command line or pid (case\-insensitive).
.TP
\fBh\fR, \fBl\fR
Remote hosts view; listening ports view.
.TP
\fBK\fR
Send a signal to the selected process (the daemon checks you may).
.TP
\fBd\fR
In the detail view: show DNS names of remote addresses.
.TP
\fBi\fR, \fBTab\fR
Next network interface in the header.
.TP
\fB+\fR, \fB\-\fR
Faster or slower refresh (100 ms to 10 s).
.TP
\fBSpace\fR
Pause the display (collection goes on).
.TP
\fB?\fR, \fBq\fR, \fBCtrl\-C\fR
Help; quit.
.SH BYTES
Process, connection and host figures are payload bytes (TCP: bytes acknowledged sent and received;
UDP: datagram payload), so TCP and UDP mean the same thing. Interface figures come from
\fI/proc/net/dev\fR and are wire bytes (headers included).
.SH PERMISSIONS
\fBsstop\fR runs as any user and reads from the \fBsstopd\fR(8) daemon over a Unix socket that belongs to
group \fBsstop\fR, mode 0660. To let a user watch:
.PP
.RS
sudo usermod \-aG sstop USER
.RE
.PP
then log in again. Run as root with no daemon, \fBsstop\fR starts the collector in\-process instead.
A user may signal only processes whose real uid is theirs; root may signal any process except pid 1,
kernel threads and the daemon.
.SH ENVIRONMENT
.TP
\fBSSTOP_SOCKET\fR
Socket of the daemon, when \fB\-\-socket\fR is not given.
.SH FILES
.TP
\fI/run/sstop/sstopd.sock\fR
The daemon's socket (default).
.SH EXAMPLES
.TP
\fBsstop\fR
The live table of processes by bandwidth.
.TP
\fBsstop \-\-json \-\-count 2\fR
Two frames as JSON objects, one per line, then exit. Rates are bytes per second,
\fB*_bytes\fR fields are cumulative.
.TP
\fBsstop kill 4242 \-\-signal HUP\fR
Ask the daemon to send SIGHUP to process 4242.
.SH SEE ALSO
\fBsstopd\fR(8), \fBsystemctl\fR(1), \fBss\fR(8)
"#;

pub const SSTOPD_EXTRA: &str = r#".SH SYSTEMD
The packaged unit \fIsstopd.service\fR runs the daemon as the system user \fBsstopd\fR (group
\fBsstop\fR) with \fBType=notify\fR (ready once the first snapshot exists and the socket listens),
a watchdog fed by the collection loop, and systemd sandboxing. \fIsstopd.socket\fR offers socket
activation: systemd creates the socket with group \fBsstop\fR and mode 0660 and the daemon takes it
over through \fBLISTEN_FDS\fR.
.PP
.RS
sudo systemctl enable \-\-now sstopd
.RE
.SH CAPABILITIES
sock_diag dumps (TCP sockets and their byte counters) need no capability. The unit grants exactly:
.TP
\fBCAP_NET_RAW\fR
AF_PACKET capture: UDP and QUIC bytes, and the byte counts of the /proc fallback.
.TP
\fBCAP_DAC_READ_SEARCH\fR, \fBCAP_SYS_PTRACE\fR
Map other users' sockets to their processes through \fI/proc/<pid>/fd\fR.
.TP
\fBCAP_KILL\fR
Deliver the signals viewers are allowed to send.
.TP
\fBCAP_PERFMON\fR
Name processes that connect and exit between two samples (tracepoint sock:inet_sock_set_state;
tracefs must be mounted).
.PP
A missing capability disables only its feature; the daemon says which in every viewer's header.
.SH SIGNALS
\fBSIGTERM\fR and \fBSIGINT\fR stop the daemon cleanly: it tells systemd it is stopping, closes the
viewers, removes its socket and exits 0.
.SH FILES
.TP
\fI/run/sstop/sstopd.sock\fR
Socket for viewers (owner the daemon's user, group \fBsstop\fR, mode 0660 by default).
.TP
\fI/usr/lib/systemd/system/sstopd.service\fR, \fI/usr/lib/systemd/system/sstopd.socket\fR
The units.
.TP
\fI/usr/lib/sysusers.d/sstop.conf\fR, \fI/usr/lib/tmpfiles.d/sstop.conf\fR
The \fBsstop\fR group, the \fBsstopd\fR user and \fI/run/sstop\fR.
.SH SEE ALSO
\fBsstop\fR(1), \fBsystemd.exec\fR(5), \fBcapabilities\fR(7), \fBsock_diag\fR(7), \fBpacket\fR(7)
"#;

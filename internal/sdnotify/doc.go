// Package sdnotify lets a service talk to systemd's service manager:
// readiness, status and watchdog notifications (sd_notify(3)), the
// service's file-descriptor store (FDSTORE=1 and FDSTOREREMOVE=1), and the
// stored files handed back at the next start (LISTEN_FDS,
// LISTEN_FDNAMES).
//
// Plain notifications and the stored files come from
// github.com/coreos/go-systemd/v22; sending files (SCM_RIGHTS), which that
// library does not do, is written here over golang.org/x/sys/unix.
//
// Everything is a no-op when the process does not run under a service
// manager (NOTIFY_SOCKET unset). The package knows nothing of vsp.
package sdnotify

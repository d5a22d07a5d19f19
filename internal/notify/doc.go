// Package notify owns the LISTEN side of Postgres notifications for the
// front ends: one dedicated connection per (backend, database), the
// listener, which LISTENs on the union of the channels its subscribers want
// and fans every NotificationResponse out to the subscribers of its channel.
//
// Why one connection per (backend, database): a LISTEN belongs to the
// session that ran it, so forwarding a client's LISTEN to a pooled backend
// would pin that backend to the client for as long as it listens, and a pool
// of a few backends would be used up by a few listeners. Notifications are
// scoped to a database, not to a role, so one session per database sees
// every notification any client of that database could LISTEN for; the
// number of backend connections spent on LISTEN is then the number of
// (backend, database) pairs in use, whatever the number of clients. A key
// whose last subscriber leaves closes its connection, so idle keys hold no
// backend connection. The listener logs in with
// application_name=mqstack-listener (ApplicationName), so operators find it
// in pg_stat_activity.
//
// The gap rule: a notification is delivered only to sessions that were
// listening when it was committed, so what is sent while a listener's
// connection is down (the backend was terminated, Postgres restarted) cannot
// be recovered. The listener reconnects with backoff, LISTENs every current
// channel again, and then tells each subscriber which of its channels may
// have missed notifications (Subscriber.Lost), so that it can re-read
// whatever state the notifications stood for.
//
// This package may import configs and third-party libraries; it must not
// import proxy, rest, router or internal/backend (the stack wires the
// connection string in through Options.ConnString).
package notify

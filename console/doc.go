// Package console is mqstack's web console: the page and its scripts,
// embedded in the binary and served on the REST listener under /console/,
// and the in-process history of the process's own counters (queue rates and
// depths for the last 15 minutes, the service counters) that the console's
// charts plot.
//
// It holds no data of its own and checks no token: the JSON the page reads
// comes from the REST server's /mqstack/v1 endpoints, which verify the
// token and its grants as every REST call does, and which ask this
// package's History for the counters (filtered by the token's grants). It
// imports nothing of ours, so it can never reach a backend by itself.
package console

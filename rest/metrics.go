package rest

import "time"

// Observation is one REST call, as the per-queue metrics see it. Every field
// comes from a bounded set except Queue, which the recorder must cap
// (metrics.max_queues).
type Observation struct {
	Function string        // pgmq function, from the REST function table
	Op       string        // grant op of the function (auth.Op's name), "" when refused before it was known
	Queue    string        // queue or routing key as given, "" for listings and early refusals
	Outcome  string        // ok, unauthorized, denied, not_found, client_error, canceled, unavailable, error
	Status   int           // HTTP status
	Rows     int           // messages sent, read, deleted or archived; rows listed
	Latency  time.Duration // from the request's arrival to the response
	// Reason of a refusal, from a bounded set: the token's refusal reason
	// (auth.Reason, or "missing_token") for unauthorized, the grant
	// check's (router.Denial.Reason) for denied; "" otherwise.
	Reason string
	// MessageSize is the size in bytes of the message argument of a send
	// (msg, or the whole msgs array); 0 for other calls.
	MessageSize int
}

// Recorder records calls. rest declares it and imports no metrics package:
// internal/stack's restRecorder adapts it to internal/metrics (per-queue
// and service metrics, shared with the proxy). It must be safe for
// concurrent use and must not block.
type Recorder interface {
	ObserveCall(Observation)
}

type nopRecorder struct{}

func (nopRecorder) ObserveCall(Observation) {}

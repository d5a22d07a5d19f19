// Package configs owns mqstack's configuration: the config types and their
// defaults, strict YAML loading (unknown keys are errors), the MQSTACK_*
// environment overlay, Validate, and the Postgres tuning engine that turns
// memory, CPUs and disk into a postgresql.conf for queue workloads.
//
// It imports nothing of ours.
package configs

package rest

import (
	"encoding/json"
	"net/http"
	"sync"
)

// The OpenAPI description is generated from functionList, the table the
// handlers resolve calls with, so the two cannot drift (openapi_test.go
// sends what the document describes to the handlers).

type obj = map[string]any

func dateTime(nullable bool) obj {
	if nullable {
		return obj{"type": []string{"string", "null"}, "format": "date-time"}
	}
	return obj{"type": "string", "format": "date-time"}
}

func intSchema(format string, nullable bool) obj {
	if nullable {
		return obj{"type": []string{"integer", "null"}, "format": format}
	}
	return obj{"type": "integer", "format": format}
}

func record(required []string, props obj) obj {
	return obj{"type": "object", "properties": props, "required": required}
}

// recordSchemas are the composite results, in pgmq's column order.
var recordSchemas = obj{
	"message_record": record([]string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message", "headers"}, obj{
		"msg_id":       intSchema("int64", false),
		"read_ct":      intSchema("int32", false),
		"enqueued_at":  dateTime(false),
		"last_read_at": dateTime(true),
		"vt":           dateTime(false),
		"message":      obj{"description": "the message as sent (any JSON value, null if none)"},
		"headers":      obj{"description": "the headers as sent (any JSON value), null when none were sent"},
	}),
	"queue_record": record([]string{"queue_name", "is_partitioned", "is_unlogged", "created_at"}, obj{
		"queue_name":     obj{"type": "string"},
		"is_partitioned": obj{"type": "boolean"},
		"is_unlogged":    obj{"type": "boolean"},
		"created_at":     dateTime(false),
	}),
	"metrics_result": record([]string{"queue_name", "queue_length", "newest_msg_age_sec", "oldest_msg_age_sec",
		"total_messages", "scrape_time", "queue_visible_length", "default_partition_length"}, obj{
		"queue_name":               obj{"type": "string"},
		"queue_length":             intSchema("int64", false),
		"newest_msg_age_sec":       intSchema("int32", true),
		"oldest_msg_age_sec":       intSchema("int32", true),
		"total_messages":           intSchema("int64", false),
		"scrape_time":              dateTime(false),
		"queue_visible_length":     intSchema("int64", false),
		"default_partition_length": intSchema("int64", true),
	}),
	"topic_binding": record([]string{"pattern", "queue_name", "bound_at", "compiled_regex"}, obj{
		"pattern":        obj{"type": "string"},
		"queue_name":     obj{"type": "string"},
		"bound_at":       dateTime(false),
		"compiled_regex": obj{"type": "string"},
	}),
	"routing_match": record([]string{"pattern", "queue_name", "compiled_regex"}, obj{
		"pattern":        obj{"type": "string"},
		"queue_name":     obj{"type": "string"},
		"compiled_regex": obj{"type": "string"},
	}),
	"notify_throttle": record([]string{"queue_name", "throttle_interval_ms", "last_notified_at"}, obj{
		"queue_name":           obj{"type": "string"},
		"throttle_interval_ms": intSchema("int32", false),
		"last_notified_at":     dateTime(false),
	}),
	"topic_send": record([]string{"queue_name", "msg_id"}, obj{
		"queue_name": obj{"type": "string"},
		"msg_id":     intSchema("int64", false),
	}),
	"Error": record([]string{"code", "message", "details", "hint"}, obj{
		"code":    obj{"type": "string", "description": "SQLSTATE or PGRSTnnn"},
		"message": obj{"type": "string"},
		"details": obj{"type": []string{"string", "null"}},
		"hint":    obj{"type": []string{"string", "null"}},
	}),
}

const digits = `^\s*[+-]?[0-9]+\s*$`

// argSchema is the JSON a parameter type accepts.
func argSchema(t argType) obj {
	switch t {
	case typeText:
		return obj{"type": "string"}
	case typeInteger:
		return obj{"oneOf": []any{intSchema("int32", false), obj{"type": "string", "pattern": digits}},
			"description": "an integer, or a string Postgres reads as one"}
	case typeBigint:
		return obj{"oneOf": []any{intSchema("int64", false), obj{"type": "string", "pattern": digits}}}
	case typeBoolean:
		return obj{"type": "boolean"}
	case typeJSONB:
		return obj{"description": "any JSON value"}
	case typeJSONBArray:
		return obj{"type": "array", "items": obj{"description": "any JSON value"}}
	case typeBigintArray:
		return obj{"type": "array", "items": intSchema("int64", false)}
	case typeTimestamptz:
		return dateTime(false)
	case typeSecondsOrTime:
		return obj{"oneOf": []any{intSchema("int32", false), obj{"type": "string", "pattern": digits},
			dateTime(false)}, "description": "seconds (a number or a string of digits) or an RFC 3339 timestamp"}
	}
	panic("BUG: argType without a schema")
}

func requestSchema(s signature) obj {
	props := obj{}
	required := []string{}
	for _, prm := range s.params {
		sc := argSchema(prm.typ)
		if prm.def != "" {
			sc["description"] = "default " + prm.def
		}
		props[prm.name] = sc
		if !prm.optional {
			required = append(required, prm.name)
		}
	}
	return obj{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

func resultSchema(s signature) obj {
	item := obj{"$ref": "#/components/schemas/" + s.rowType}
	switch s.rowType {
	case "boolean":
		item = obj{"type": "boolean"}
	case "bigint":
		item = intSchema("int64", false)
	case "integer":
		item = intSchema("int32", false)
	}
	if s.result == resultScalarSet || s.result == resultRowSet {
		return obj{"type": "array", "items": item}
	}
	return item
}

func errorResponses(op obj) {
	ref := obj{"$ref": "#/components/responses/Error"}
	for _, code := range []string{"400", "401", "403", "404", "413", "415", "500", "503"} {
		op["responses"].(obj)[code] = ref
	}
}

func operation(f *function) obj {
	op := obj{"operationId": f.name, "summary": f.summary, "responses": obj{}}
	var reqs, oks []any
	void, optional := false, true
	for _, s := range f.sigs {
		reqs = append(reqs, requestSchema(s))
		for _, prm := range s.params {
			optional = optional && prm.optional
		}
		if s.result == resultVoid {
			void = true
			continue
		}
		oks = append(oks, resultSchema(s))
	}
	body := reqs[0]
	if len(reqs) > 1 {
		body = obj{"oneOf": reqs}
	}
	op["requestBody"] = obj{"required": !optional, "content": obj{"application/json": obj{"schema": body}}}
	if void {
		op["responses"].(obj)["204"] = obj{"description": "done (no body)"}
	} else {
		var sc any = oks[0]
		if len(oks) > 1 {
			sc = obj{"oneOf": oks}
		}
		op["responses"].(obj)["200"] = obj{"description": "the result",
			"content": obj{"application/json": obj{"schema": sc}}}
	}
	errorResponses(op)
	return op
}

func getOperation(f *function) obj {
	op := obj{"operationId": f.name + "_get", "summary": f.summary, "responses": obj{}}
	var params []any
	for _, prm := range f.sigs[0].params {
		params = append(params, obj{"name": prm.name, "in": "query", "required": !prm.optional,
			"schema": obj{"type": "string"}})
	}
	if params != nil {
		op["parameters"] = params
	}
	op["responses"].(obj)["200"] = obj{"description": "the result",
		"content": obj{"application/json": obj{"schema": resultSchema(f.sigs[0])}}}
	errorResponses(op)
	return op
}

// OpenAPI returns the OpenAPI 3.1 description of the API.
func OpenAPI() []byte {
	openapiOnce.Do(func() {
		paths := obj{}
		for _, f := range functionList {
			item := obj{"post": operation(f)}
			if f.get {
				item["get"] = getOperation(f)
			}
			paths["/"+f.name] = item
		}
		for p, item := range browseOpenAPIPaths() {
			paths[p] = item
		}
		doc := obj{
			"openapi": "3.1.0",
			"info": obj{"title": "mqstack pgmq REST API", "version": "1.13.1",
				"description": "PostgREST-style RPC over the pgmq functions: POST a JSON object of named arguments " +
					"to /pgmq/v1/<function>. GET /healthz and GET /readyz sit at the root. The paths with a server " +
					"of their own (tag console) are the web console's read-only endpoints under /mqstack/v1."},
			"servers":  []any{obj{"url": "/pgmq/v1"}},
			"security": []any{obj{"bearerAuth": []any{}}},
			"paths":    paths,
			"components": obj{
				"schemas":         recordSchemas,
				"securitySchemes": obj{"bearerAuth": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
				"responses": obj{"Error": obj{"description": "an error (see code)",
					"content": obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}}}},
			},
		}
		var err error
		openapiDoc, err = json.MarshalIndent(doc, "", "  ")
		if err != nil {
			panic("BUG: OpenAPI document does not marshal: " + err.Error())
		}
	})
	return openapiDoc
}

var (
	openapiOnce sync.Once
	openapiDoc  []byte
)

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	writeBody(w, http.StatusOK, OpenAPI())
}

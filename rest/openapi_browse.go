package rest

// The console's endpoints in the OpenAPI document: paths with a server of
// their own (/mqstack/v1), since the document's server is /pgmq/v1, where
// every path is a pgmq function.

var browseServers = []any{obj{"url": "/mqstack/v1", "description": "the console's read-only endpoints"}}

func browseGet(id, summary string, params []any, result obj) obj {
	op := obj{"operationId": id, "summary": summary, "tags": []string{"console"}, "responses": obj{
		"200": obj{"description": "the result", "content": obj{"application/json": obj{"schema": result}}},
	}}
	if params != nil {
		op["parameters"] = params
	}
	ref := obj{"$ref": "#/components/responses/Error"}
	for _, code := range []string{"400", "401", "403", "404", "500", "503"} {
		op["responses"].(obj)[code] = ref
	}
	return obj{"servers": browseServers, "get": op}
}

func pathParam(name, desc string, schema obj) obj {
	return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": schema}
}

func queryParam(name, desc string, schema obj) obj {
	return obj{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
}

var (
	queueParam = pathParam("queue", "the queue's name (printable ASCII, 1 to 47 characters)", obj{"type": "string"})
	stateParam = queryParam("state", "which messages: visible (default: a read would return them now), in_flight "+
		"(read, not visible again yet), delayed (never read, not visible yet) or archived",
		obj{"type": "string", "enum": []string{"visible", "in_flight", "delayed", "archived"}})
	anyJSON = obj{"description": "any JSON value"}
)

var browseMessage = record([]string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message_bytes", "preview", "has_headers"}, obj{
	"msg_id": intSchema("int64", false), "read_ct": intSchema("int32", false),
	"enqueued_at": dateTime(false), "last_read_at": dateTime(true), "vt": dateTime(false),
	"archived_at":   obj{"type": "string", "format": "date-time", "description": "archived messages only"},
	"message_bytes": intSchema("int32", true),
	"preview":       obj{"type": []string{"string", "null"}, "description": "the message's JSON text, cut at 300 characters"},
	"has_headers":   obj{"type": "boolean"},
})

// browseOpenAPIPaths are the /mqstack/v1 paths.
func browseOpenAPIPaths() obj {
	nullableNumbers := obj{"type": "array", "items": obj{"type": []string{"number", "null"}}}
	return obj{
		"/session": browseGet("console_session", "who the token is and what the console may show it", nil,
			record([]string{"role", "expires_at", "limited", "can_list", "service", "console"}, obj{
				"role": obj{"type": "string"}, "subject": obj{"type": "string"}, "expires_at": dateTime(true),
				"limited":  obj{"type": "boolean", "description": "the token carries queue grants"},
				"can_list": obj{"type": "boolean"}, "service": obj{"type": "boolean", "description": "GET /service is allowed"},
				"console": obj{"type": "boolean", "description": "the console is served (rest.console)"}})),
		"/queues": browseGet("console_queues", "the queues the token may list: kind, depth by state, what the token may do "+
			"(grant list; at most 200 queues)", nil,
			obj{"type": "object", "properties": obj{"queues": obj{"type": "array", "items": record(
				[]string{"queue_name", "is_partitioned", "is_unlogged", "fifo_index", "notify_insert", "topic_bindings", "created_at", "depth", "can"}, obj{
					"queue_name": obj{"type": "string"}, "is_partitioned": obj{"type": "boolean"}, "is_unlogged": obj{"type": "boolean"},
					"fifo_index": obj{"type": "boolean"}, "notify_insert": obj{"type": "boolean"},
					"topic_bindings": intSchema("int64", false), "created_at": dateTime(false),
					"depth": obj{"type": []string{"object", "null"}, "description": "visible, in_flight, delayed, archived, oldest_visible_age_sec"},
					"can":   obj{"type": "object", "description": "read, send, delete, archive, drop: what the token's grants allow"}})},
				"truncated": obj{"type": "boolean"}, "max_queues": intSchema("int32", false)}}),
		"/queues/{queue}/messages": browseGet("console_browse", "one page of a queue's messages, oldest id first, "+
			"without reading them (grant read): no visibility timeout, no read count",
			[]any{queueParam, stateParam,
				queryParam("limit", "messages per page, 1 to 200 (default 50)", obj{"type": "integer"}),
				queryParam("after", "the page starts after this message id (default 0); next_after of the previous page", obj{"type": "integer"})},
			record([]string{"queue", "state", "limit", "after", "next_after", "messages"}, obj{
				"queue": obj{"type": "string"}, "state": obj{"type": "string"}, "limit": intSchema("int32", false),
				"after": intSchema("int64", false), "next_after": intSchema("int64", true),
				"messages": obj{"type": "array", "items": browseMessage}})),
		"/queues/{queue}/messages/{msg_id}": browseGet("console_message", "one message with its full body and headers "+
			"(each shown up to 1 MiB; null beyond, with its size) (grant read)",
			[]any{queueParam, pathParam("msg_id", "the message id", obj{"type": "integer"}),
				queryParam("state", "archived: look in the archive", obj{"type": "string", "enum": []string{"archived"}})},
			record([]string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message_bytes", "headers_bytes", "message", "headers"}, obj{
				"msg_id": intSchema("int64", false), "read_ct": intSchema("int32", false),
				"enqueued_at": dateTime(false), "last_read_at": dateTime(true), "vt": dateTime(false),
				"archived_at": dateTime(false), "message_bytes": intSchema("int32", true), "headers_bytes": intSchema("int32", true),
				"message": anyJSON, "headers": anyJSON})),
		"/stats": browseGet("console_stats", "rates and depths of the last 15 minutes, sampled in-process from mqstack's "+
			"own counters, for the queues the token may list (grant list)",
			[]any{queryParam("queue", "only this queue", obj{"type": "string"})},
			obj{"type": "object", "properties": obj{
				"interval_sec": obj{"type": "number"}, "window_sec": obj{"type": "number"},
				"t":      obj{"type": "array", "items": obj{"type": "number"}, "description": "sample times, Unix seconds"},
				"queues": obj{"type": "object", "additionalProperties": obj{"type": "object", "additionalProperties": nullableNumbers, "description": "sent, received, deleted, archived (per second), visible, in_flight, delayed; aligned with t"}}}}),
		"/service": browseGet("console_service", "client connections, backends per pool, pins, denials, token refusals and "+
			"closed connections, read now from the counters /metrics exports (grant list on every queue)", nil,
			obj{"type": "object", "properties": obj{"at": dateTime(false), "clients": obj{"type": "number"},
				"pools": obj{"type": "array"}, "pins": obj{"type": "array"}, "denials": obj{"type": "array"},
				"auth_failures": obj{"type": "array"}, "connections_closed": obj{"type": "array"}}}),
	}
}

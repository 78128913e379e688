/* Pieces shared by the translators that talk to Amazon Bedrock Runtime (Converse and InvokeModel):
 * the /model/<id>/<action> path, the error type of a failed call, and the error carried by a
 * non-event frame of an event stream. Pure functions; the caller owns every buffer. */
#ifndef GW_TRANSLATE_BEDROCK_COMMON_H
#define GW_TRANSLATE_BEDROCK_COMMON_H

#include "codec/aws_eventstream.h"
#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"

#define GW_BEDROCK_DEFAULT_ANTHROPIC_VERSION "bedrock-2023-05-31"

/* Appends "/model/<model>/<action>" to path, the model id percent-encoded as one path segment
 * (RFC 3986 unreserved characters kept; ':' and '/' of ids and ARNs encoded), which is the form
 * that is sent and signed: "us.anthropic.claude-3-7-sonnet-20250219-v1:0" ->
 * "us.anthropic.claude-3-7-sonnet-20250219-v1%3A0". GW_OK, GW_EINVAL for an empty model, or
 * GW_TOOBIG past path's cap. */
int gw_bedrock_model_path(gw_buf_t *path, gw_str_t model, const char *action);

/* The error type of a failed Bedrock call from its x-amzn-errortype header, without the
 * ":http://internal.amazon.com/..." suffix AWS may append; empty when the header is absent. */
gw_str_t gw_bedrock_error_type(const gw_http_header_t *headers, size_t n_headers);

/* The "message" (or "Message") string of an AWS JSON error body, unescaped and appended to out.
 * false (out unchanged) when the body is not a JSON object with such a string. */
bool gw_bedrock_error_message(gw_str_t body, gw_buf_t *out);

/* An event-stream frame that carries an error instead of an event: ":message-type" "exception"
 * (":exception-type" names it, the payload is {"message": ...}) or "error" (":error-code" and
 * ":error-message" headers). Returns true for such a frame, with *type set (a slice of the frame)
 * and the message appended to message (the payload text when it has no JSON message). */
bool gw_bedrock_frame_error(const gw_es_message_t *m, gw_str_t *type, gw_buf_t *message);

#endif

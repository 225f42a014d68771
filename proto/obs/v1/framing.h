/*
 * How a datagram from the module to the sidecar is framed (record.proto
 * describes what it carries): the one definition that the module's sender
 * (ngx_obs_module/ngx_http_obs_send.c, _key.c), the sidecar's reader
 * (sidecar/ingest/ingest.c, sidecar/config.c) and the tests (C includes
 * this file, Python reads its #define lines: t/helpers/obs_contract.py)
 * all use.
 * Plain C, no includes: nginx's build and the sidecar's both take it.
 */

#ifndef OBS_V1_FRAMING_H
#define OBS_V1_FRAMING_H

/*
 * BatchHeader.schema_version: 1, records in rows only; 2, also in
 * columns.  The module sends the current one; the sidecar reads from the
 * oldest to the newest and refuses the rest (decode_errors "schema").
 */
#define OBS_SCHEMA_MIN        1
#define OBS_SCHEMA_MAX        2
#define OBS_SCHEMA_CURRENT    2

/*
 * The most bytes one datagram of records carries (the module seals a batch
 * before it), and the most the sidecar reads: anything larger is not one
 * of the module's (decode_errors "oversize").
 */
#define OBS_DATAGRAM_MAX      60000
#define OBS_DATAGRAM_READ_MAX 65536

/*
 * An authenticated datagram (obs_sidecar ... key=FILE; the sidecar's
 * ingest_key_file): this mark, HMAC-SHA256 of the serialized Batch under
 * the shared key, then the Batch.  0xff cannot start a protobuf message,
 * so a receiver without the key sees a malformed datagram instead of
 * misreading it.
 */
#define OBS_MAC_MARK          "\xff" "OBH"
#define OBS_MAC_MARK_LEN      4
#define OBS_MAC_LEN           32

/*
 * The shared key: the first line of a regular file (up to CR or LF),
 * OBS_KEY_MIN to OBS_KEY_MAX bytes, none of them NUL (the sidecar keeps it
 * as a C string: a NUL would cut its key short of the module's).
 */
#define OBS_KEY_MIN           16
#define OBS_KEY_MAX           1023

/* MetricObservation.type: what an obs_metric observation adds to */
#define OBS_METRIC_COUNTER    1
#define OBS_METRIC_GAUGE      2

/*
 * Record.from_request: the labels of a record that a client's request
 * made rather than the configuration; the sidecar gives those a bounded
 * share of its caps (from_request_percent).
 */
#define OBS_FROM_REQUEST_ROUTE    1
#define OBS_FROM_REQUEST_SERVICE  2
#define OBS_FROM_REQUEST_TENANT   4

#endif

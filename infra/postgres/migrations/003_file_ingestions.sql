-- The file ingest's ledger (`sluice files`): one row per S3 object version it has seen,
-- keyed by the object's identity (bucket, key, version id or ETag). The row's counts and
-- committed_rows are updated in the same transaction as each batch of rows inserted into
-- staging.agent_events, so a crash resumes the file after its last committed row.
CREATE TABLE staging.file_ingestions (
  file_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  bucket         text        NOT NULL,
  object_key     text        NOT NULL,
  -- The S3 version id on a versioned bucket, else the ETag: a changed object under the same key is a new row.
  object_version text        NOT NULL,
  etag           text        NOT NULL,
  source         text        NOT NULL,
  size_bytes     bigint      NOT NULL,
  last_modified  timestamptz NOT NULL,
  -- SHA-256 of the object's bytes as stored (compressed or not), hex; set before any row is read.
  sha256         text,
  -- pending, processing, finishing (rows done, outputs pending), succeeded, failed, duplicate
  status         text        NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'processing', 'finishing', 'succeeded', 'failed', 'duplicate')),
  -- The earlier file with the same sha256, for a duplicate.
  duplicate_of   bigint      REFERENCES staging.file_ingestions (file_id),
  rows_read      bigint      NOT NULL DEFAULT 0,
  rows_accepted  bigint      NOT NULL DEFAULT 0,
  rows_rejected  bigint      NOT NULL DEFAULT 0,
  rows_duplicate bigint      NOT NULL DEFAULT 0,
  -- Data records (after the header) fully handled and committed: a restart skips this many.
  committed_rows bigint      NOT NULL DEFAULT 0,
  -- Reason code and message of the first file-level failure (the file's rows have their own in the rejects).
  error_reason   text,
  first_error    text,
  -- received_at of every row of the file: fixed at the first attempt, so a resumed file validates the same.
  received_at    timestamptz,
  discovered_at  timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz,
  attempts       integer     NOT NULL DEFAULT 0,
  -- Where the object went afterwards (processed/..., failed/...), or the tag it got.
  disposition    text,
  UNIQUE (bucket, object_key, object_version)
);
CREATE INDEX file_ingestions_sha256_idx ON staging.file_ingestions (sha256);
CREATE INDEX file_ingestions_status_idx ON staging.file_ingestions (source, status, discovered_at);

-- Rejected rows of files being ingested, written in the same transaction as the batch they
-- belong to; when the file is done they become its rejects CSV and DLQ records, then are deleted.
CREATE TABLE staging.file_rejects (
  file_id  bigint  NOT NULL REFERENCES staging.file_ingestions (file_id) ON DELETE CASCADE,
  line     bigint  NOT NULL,
  reasons  text    NOT NULL,
  message  text    NOT NULL,
  original text    NOT NULL,
  PRIMARY KEY (file_id, line)
);

-- Where each source's listing of incoming/<source>/ resumes (ListObjectsV2 StartAfter).
CREATE TABLE staging.file_cursors (
  bucket     text        NOT NULL,
  prefix     text        NOT NULL,
  start_after text       NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bucket, prefix)
);

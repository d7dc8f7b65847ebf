-- Schema 5: write-ahead logging, where the host lets the component choose.
-- Spin opens its default database in rollback-journal mode: every write then
-- syncs a journal and the file and blocks all readers meanwhile. WAL is a
-- property of the file, so asking once keeps it for every later connection.
-- A PRAGMA is advice (migrations.rs): the native host refuses it (its file
-- backend sets WAL itself) and a libSQL server manages its own journal.
PRAGMA journal_mode = WAL;

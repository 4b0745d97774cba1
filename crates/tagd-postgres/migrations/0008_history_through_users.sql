-- A narrower change log (issue 16): the history of one assignment is read through the index
-- by user (an assignment has one user; its changes are among that user's), so the index by
-- assignment, one entry per change for a single read path, goes.
DROP INDEX IF EXISTS change_log_by_assignment;

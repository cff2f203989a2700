-- The KPI ledger: each call keeps its call satisfaction, decided when it
-- came (whether an available unit was inside its service radius: "own",
-- "linked" or "missed", and why not; '' for a call taken before), and
-- each assignment when its crew accepted it (the ack stage).

-- +goose Up
ALTER TABLE incidents ADD COLUMN satisfaction text NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN satisfaction_reason text NOT NULL DEFAULT '';
ALTER TABLE assignments ADD COLUMN accepted_at timestamptz;

-- +goose Down
ALTER TABLE assignments DROP COLUMN accepted_at;
ALTER TABLE incidents DROP COLUMN satisfaction_reason;
ALTER TABLE incidents DROP COLUMN satisfaction;

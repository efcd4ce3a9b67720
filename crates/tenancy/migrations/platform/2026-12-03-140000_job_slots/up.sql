-- The last schedule slot each scheduled job was claimed for (crate
-- rampart-members, `scheduler`): a replica runs a slot only when its
-- conditional upsert moves `last_slot` forward, so two replicas waking for
-- the same slot run it once, and a replica back from downtime catches up
-- with one run for the latest missed slot.
CREATE TABLE platform.job_slots (
    job         text PRIMARY KEY,
    last_slot   timestamptz NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);

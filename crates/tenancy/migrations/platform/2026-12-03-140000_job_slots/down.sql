DROP TABLE platform.job_slots;

CREATE TABLE taskyard_ticks (
    schedule   TEXT NOT NULL,
    tick       BIGINT NOT NULL,
    target     TEXT NOT NULL,
    instance   TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (schedule, tick, target)
);
CREATE INDEX taskyard_ticks_by_claim ON taskyard_ticks (claimed_at);

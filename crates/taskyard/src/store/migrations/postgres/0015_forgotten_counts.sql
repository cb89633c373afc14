-- A succeeded run whose task keeps none (`Task::keep_succeeded(false)`) leaves no record:
-- its end is counted here instead, by the minute it ended in and by task, so that the
-- dashboard's charts show it. Each instance adds up its own ends in memory and writes them
-- about once a second into rows of its own (`writer`, the instance), so that no end's
-- statement writes a count and no two instances wait for each other's row.
CREATE TABLE taskyard_forgotten (
    minute BIGINT NOT NULL,
    task   TEXT COLLATE "C" NOT NULL,
    writer TEXT COLLATE "C" NOT NULL,
    runs   BIGINT NOT NULL,
    PRIMARY KEY (minute, task, writer)
);

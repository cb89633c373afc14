-- A succeeded run whose task keeps none (`Task::keep_succeeded(false)`) leaves no record:
-- its end is counted here instead, by the minute it ended in and by task, so that the
-- dashboard's charts show it. Each instance adds up its own ends in memory and writes them
-- about once a second into rows of its own (`writer`, the instance).
CREATE TABLE taskyard_forgotten (
    minute INTEGER NOT NULL,
    task   TEXT NOT NULL,
    writer TEXT NOT NULL,
    runs   INTEGER NOT NULL,
    PRIMARY KEY (minute, task, writer)
);

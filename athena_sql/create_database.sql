-- Create the Athena database that holds tglake's tables (step 1 of 4).
--
-- Then run create_table_messages, create_table_raw_updates and
-- create_view_all_messages, in that order, in this database.
--
-- @param database name tglake The database name (TGLAKE_ATHENA_DATABASE).
CREATE DATABASE IF NOT EXISTS {{database}}

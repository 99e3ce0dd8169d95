-- Notification groups (issue 20, item 5; services/notification/README.md, "Reads").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- notifications_group: the shown likes or reposts of one tweet in an inbox
-- (a group of the grouped view), in id order. A grouped page reads only each
-- group's newest member (one probe of this index tells a member from the
-- newest), and a group's newest actors are its last few entries here, so a
-- like storm of 10,000 is neither sorted on every grouped page nor walked
-- through page after page of skipped rows.
ALTER TABLE notifications ADD KEY notifications_group (recipient_id, cause, subject_id, state, id);

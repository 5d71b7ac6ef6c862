-- Delivered events are purged after a retention period (HSSK_OUTBOX_RETENTION_DAYS): the
-- purge finds them by delivery time without reading the rest of the outbox.
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE status = 'delivered';

"""Write-back: plan_writeback (pure diff) and apply_plan (batches, ledger), enrollments, rollback."""

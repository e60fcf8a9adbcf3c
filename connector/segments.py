"""Segment tags (pure): lifecycle, NPS group, RFM, playbook tags and custom rules."""

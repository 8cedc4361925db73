"""CDS Hooks 2.0 service: discovery, the three hooks, draft orders, cards, JWT trust, feedback.

azaguard's rules answer at the moment an EHR calls: when the chart opens (patient-view) and when a
vaccine or azathioprine is being ordered (order-select, order-sign).
"""

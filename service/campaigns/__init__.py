"""Campaigns on the service: a closed optimisation loop the server runs on a schedule.

A campaign is an :class:`optimizer.campaign.Campaign` (its JSON state lives in the
``campaigns`` table) plus a schedule with overlap and catch-up policies, an optional lab
connector and the records of its rounds. One module per concern, imported in this order
(no module imports one above it):

=================  ==========================================================================
``store``          the tables and :class:`~service.campaigns.store.CampaignStore` (every state
                   change a compare-and-set: a ``kill -9`` resumes a round at its step)
``schedules``      when fires come due: cron and measurement triggers, catch-up, overlap
``ingest``         measurement batches: checked, linked to proposals, stored
``connectors``     what delivers batches without a person: the virtual lab, a watched inbox
``report``         the campaign's HTML report
``manager``        what the routes call: spec checks, visibility, quotas, read-outs
=================  ==========================================================================

The loop that fires and advances rounds is :mod:`service.scheduler`. A round analyses only
the measurements that arrived since the previous round took its own (each proposal is told
once; the GP accumulates the history), which keeps every round's analysis the same size.
"""

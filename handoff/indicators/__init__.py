"""Daily indicators of the national referral mechanism: from first contact to a service
delivered, per day, governorate, channel and partner organisation.

* ``daily`` computes the figures for one local day (counts of people, never of messages) and
  applies the same disclosure control as the dashboard (k = 5, complementary suppression).
* ``release`` turns them into a differentially private release (OpenDP's discrete Laplace
  mechanism) for anything that leaves the organisation, and keeps the privacy-budget ledger.
"""

"""Positions and P&L from our own fill ledger (never from the venue's balance or trade history).

The one ledger: every page and task that needs a position or a P&L asks it here (the Statistics page,
the Bots page and a bot's tick, the webhooks' close and protection, flatten, venue exits), so they
cannot disagree; `aristobot ledger check` (check.py, also daily) proves it over the stored fills.

fills.py: what one fill does to a position (its base-asset fee, its inventory change).
entries.py: the ledger rows as the books see them (sources, fills, rows that cannot be used,
fills the venue answered incompletely).
fifo.py: FIFO lot matching of a book, round trips, open positions. positions.py: the position of one
bot or one webhook on one symbol (its statistics book, read whole). report.py: the statistics page's
report, chart and CSV. loading.py: the ledger and the marks read from the database and the venues.
cache.py: a user's ledger matched once and kept while no fill arrives (the Statistics page's views).

Method
------
**Books.** Fills are matched inside one *book*: one broker connection, one symbol, one source (manual,
each webhook, each bot, OCO, or "no order" for a fill the ledger holds without an order). Each book
is an independent position, so a bot's P&L never absorbs a manual trade on the same symbol. A source
that sells more than it bought opens a *short* lot (on a spot venue this is a sell of inventory another
source bought, or a webhook's deliberate short sale); the two books then net out in the broker and
symbol totals.

**Fee dust is never a short.** A buy of ``q`` paying fee ``f`` in the base asset holds ``q − f``; a
later sell of the *ordered* quantity ``q`` takes ``f`` more than the book holds (the venue sells it from
the account's other inventory). A book keeps the base fees paid since it was last flat or short at the
start of an order; a sell's excess beyond the long, up to that amount, is closed against a lot entered
at the sell's own price (no gain, its share of the fee) and counted as ``unheld``; only the rest opens a
short lot. The allowance is reset when a *new order* starts on a flat or short book, never between the
fills of one order, so splitting a fill changes nothing.

**Fees** are valued in the symbol's quote asset: a fee charged in the quote asset counts as is, a fee
charged in the base asset counts as ``fee × fill price`` (a position takes a fee without an asset as
quote, as spot venues charge sells; the statistics report leaves such a fill out, see below). A
base-asset fee also changes the inventory: a buy of ``q`` with fee ``f`` in base delivers ``q − f``;
a sell of ``q`` with fee ``f`` in base removes ``q + f``. A fee in any other asset (BNB, …) has no
price in the ledger: it is left out of P&L and reported, per asset, as unvalued.

**Cash flow of a fill** (in quote): a buy pays ``q × p`` plus its quote fee, a sell receives ``q × p``
minus its quote fee. Base fees need no cash term: their cost is the inventory they remove, which the
position's cost basis carries (``fee × price`` of value).

**FIFO lot matching.** Fills are taken in ``(traded_at, id)`` order. A fill in the direction of the
book's position (or on a flat book) opens a lot carrying its inventory change and its whole cash flow
(fees included: the cost basis). A fill against the position closes the oldest lots first; each
closed portion realises ``lot cash share + fill cash share`` where shares are pro rata to quantity,
the last share of a lot or fill taking exactly what remains (no rounding drift). Any remainder of the
fill opens a lot the other way. Consequently, once a book is flat again its realised P&L is exactly
``Σ sell notional − Σ buy notional − Σ quote-asset fees`` (base fees being in the quantities), and
every fee valued in quote appears in the realised P&L of the round trip that closes its lot. With
fee dust sold: realised + open lots' cash + ``unheld`` valued at its sell prices = Σ cash flows.

**Round trips.** One closing order (its fills together; a fill without an order alone) against the
lots it closes: its P&L is the sum of its closed portions. Win rate, average win/loss and profit
factor (gross profit / gross loss) are computed over round trips; a zero P&L is neither win nor loss.

**Ranges.** The matching always runs over the whole history up to the range's end, so a position
opened before the range is closed against its real entry. Realised P&L, round trips and the chart
count closings inside the range; fees count fills inside the range; open positions are those at the
range's end, marked at the venue's *current* last price (unrealised = ``quantity × mark + lot cash``).

**Incomplete fills.** A fill the venue answered incompletely (no price, no quantity, a fee without
its asset: ``entries.classify``) is left out of the statistics report's books and totals and listed
with its reason, so the page says what it did not count instead of guessing.

Arithmetic is Decimal at 60 significant digits; the ledger holds 18 decimal places.
"""

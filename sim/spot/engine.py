"""A venue-neutral spot matching engine for the simulator.

It knows accounts (by an opaque id), balances, orders and fills; it knows nothing of any venue's
protocol. Protocol faces (Binance today, others later) translate requests into `OrderRequest`s and
`EngineError.reason`s into their own codes.

Liquidity comes from outside: `book(symbol)` gives the synthetic book that takers walk, and
`on_print(...)` feeds each market trade, which fills resting limits it crosses and triggers stops.
User orders never move the synthetic market (the market is a deterministic function of its seed).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal

from sim.spot import trailing
from sim.spot.locks import BookSource, draft, lock_need, move
from sim.spot.order_checks import stop_triggered, validate
from sim.spot.orders import (
    COMMISSION_UNIT,
    FEE_RATE,
    LIMIT_PRICED,
    STOP_TYPES,
    ZERO,
    Account,
    EngineError,
    Fill,
    Instrument,
    OcoLeg,
    Order,
    OrderList,
    OrderRequest,
    OrderType,
    Side,
    Status,
    TimeInForce,
    new_client_order_id,
)

Clock = Callable[[], int]


class MatchingEngine:
    def __init__(
        self,
        instruments: list[Instrument],
        book: BookSource,
        clock: Clock,
        *,
        last_price: Callable[[str], Decimal],
        fee_rate: Decimal = FEE_RATE,
    ):
        self.instruments = {i.symbol: i for i in instruments}
        self.book = book
        self.clock = clock
        self.last_price = last_price
        self.fee_rate = fee_rate
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self.order_lists: dict[int, OrderList] = {}
        self.fills: list[Fill] = []
        self.next_order_id = 1
        self.next_trade_id = 1
        self.next_list_id = 1
        self.listeners: list[Callable[[Order], None]] = []
        self._open_by_client: dict[tuple[str, str, str], int] = {}  # (account, symbol, client id) -> order id

    # --- accounts ---------------------------------------------------------------------------

    def set_account(self, account_id: str, balances: dict[str, Decimal]) -> Account:
        """Creates the account or sets the free balance of the listed assets (idempotent)."""
        account = self.accounts.setdefault(account_id, Account(account_id))
        for asset, amount in balances.items():
            if amount < ZERO:
                raise EngineError(EngineError.INVALID, f"Balance of {asset} cannot be negative.")
            account.balance(asset).free = Decimal(amount)
        return account

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise EngineError(EngineError.INVALID, "Unknown account.")
        return account

    def instrument(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise EngineError(EngineError.UNKNOWN_SYMBOL, "Invalid symbol.")
        return instrument

    # --- placing --------------------------------------------------------------------------

    def place(self, account_id: str, request: OrderRequest, *, order_list_id: int = -1, lock: bool = True) -> Order:
        account = self.account(account_id)
        instrument = self.instrument(request.symbol)
        validate(instrument, request, self.last_price)
        client_id = request.client_order_id or new_client_order_id()
        if (account_id, request.symbol, client_id) in self._open_by_client:
            raise EngineError(EngineError.DUPLICATE_ORDER, "Duplicate order sent.")
        self._check_not_immediate(instrument, request)
        now = self.clock()
        order = Order(
            order_id=self.next_order_id,
            account_id=account_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            client_order_id=client_id,
            quantity=request.quantity or ZERO,
            quote_quantity=request.quote_quantity or ZERO,
            price=request.price or ZERO,
            stop_price=request.stop_price or ZERO,
            time_in_force=request.time_in_force,
            time=now,
            update_time=now,
            order_list_id=order_list_id,
            trailing_delta=request.trailing_delta or 0,
        )
        if order.trailing_delta:
            trailing.arm(order, self.last_price(order.symbol), now)
        if lock:
            self._lock(account, instrument, order)
        self.next_order_id += 1
        self.orders[order.order_id] = order
        if order.type in STOP_TYPES:
            order.working_time = -1
        else:
            order.working_time = now
            self._execute_on_arrival(instrument, order)
        if order.is_open:
            self._open_by_client[(account_id, order.symbol, order.client_order_id)] = order.order_id
        self._notify(order)
        return order

    def place_oco(
        self,
        account_id: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        above: OcoLeg,
        below: OcoLeg,
        list_client_order_id: str | None = None,
    ) -> OrderList:
        """Two legs sharing one quantity; when one executes the other is canceled."""
        account = self.account(account_id)
        instrument = self.instrument(symbol)
        requests = [
            OrderRequest(
                symbol,
                side,
                leg.type,
                quantity=quantity,
                price=leg.price,
                stop_price=leg.stop_price,
                time_in_force=leg.time_in_force,
                client_order_id=leg.client_order_id,
            )
            for leg in (above, below)
        ]
        for request in requests:
            validate(instrument, request, self.last_price)
            if request.type not in (OrderType.LIMIT_MAKER, *STOP_TYPES):
                raise EngineError(EngineError.INVALID, "Unsupported order type for an OCO leg.")
            self._check_not_immediate(instrument, request)
        clients = [r.client_order_id for r in requests if r.client_order_id]
        if len(set(clients)) != len(clients) or any((account_id, symbol, c) in self._open_by_client for c in clients):
            raise EngineError(EngineError.DUPLICATE_ORDER, "Duplicate order sent.")
        # One lock covers both legs: the larger of their needs, held by whichever leg is still open.
        needs = [lock_need(instrument, draft(r), self.book) for r in requests]
        asset, amount = max(needs, key=lambda need: need[1])
        if account.balance(asset).free < amount:
            raise EngineError(
                EngineError.INSUFFICIENT_BALANCE, "Account has insufficient balance for requested action."
            )
        order_list = OrderList(
            self.next_list_id, account_id, symbol, list_client_order_id or new_client_order_id(), [], self.clock()
        )
        self.next_list_id += 1
        self.order_lists[order_list.order_list_id] = order_list
        legs = [self.place(account_id, r, order_list_id=order_list.order_list_id, lock=False) for r in requests]
        move(account.balance(asset), amount, to_locked=True)
        legs[0].lock_asset, legs[0].locked = asset, amount
        order_list.order_ids = [leg.order_id for leg in legs]
        order_list.update_time = order_list.time
        return order_list

    def _check_not_immediate(self, instrument: Instrument, request: OrderRequest) -> None:
        if (
            request.type in STOP_TYPES
            and not request.trailing_delta
            and stop_triggered(request.type, request.side, request.stop_price, self.last_price(instrument.symbol))
        ):
            raise EngineError(EngineError.WOULD_TRIGGER, "Order would trigger immediately.")
        if request.type == OrderType.LIMIT_MAKER and self._crosses(request.symbol, request.side, request.price):
            raise EngineError(EngineError.WOULD_TAKE, "Order would immediately match and take.")

    def _crosses(self, symbol: str, side: Side, price: Decimal | None) -> bool:
        bids, asks = self.book(symbol)
        if side == Side.BUY:
            return bool(asks) and (price is None or price >= asks[0][0])
        return bool(bids) and (price is None or price <= bids[0][0])

    # --- balances -------------------------------------------------------------------------

    def _lock(self, account: Account, instrument: Instrument, order: Order) -> None:
        asset, amount = lock_need(instrument, order, self.book)
        balance = account.balance(asset)
        if balance.free < amount:
            raise EngineError(
                EngineError.INSUFFICIENT_BALANCE, "Account has insufficient balance for requested action."
            )
        move(balance, amount, to_locked=True)
        order.lock_asset, order.locked = asset, amount

    def _release(self, order: Order) -> None:
        if order.locked > ZERO:
            move(self.accounts[order.account_id].balance(order.lock_asset), order.locked, to_locked=False)
            order.locked = ZERO

    def _spend(self, order: Order, asset: str, amount: Decimal) -> bool:
        """Takes amount of asset from the order's lock first, then from free; False when short."""
        balance = self.accounts[order.account_id].balance(asset)
        from_lock = min(order.locked, amount) if order.lock_asset == asset else ZERO
        if balance.free < amount - from_lock:
            return False
        order.locked -= from_lock
        balance.locked -= from_lock
        balance.free -= amount - from_lock
        return True

    # --- execution ------------------------------------------------------------------------

    def _execute_on_arrival(self, instrument: Instrument, order: Order) -> None:
        if order.type == OrderType.MARKET:
            self._take(instrument, order, limit=None)
            self._finish_taker(order)
        elif order.type == OrderType.LIMIT_MAKER:
            return
        elif order.time_in_force == TimeInForce.FOK:
            if self._fillable(order) < order.quantity:
                order.status = Status.EXPIRED
                self._close(order)
                return
            self._take(instrument, order, limit=order.price)
        else:
            self._take(instrument, order, limit=order.price)
            if order.time_in_force == TimeInForce.IOC:
                self._finish_taker(order)

    def _fillable(self, order: Order) -> Decimal:
        bids, asks = self.book(order.symbol)
        levels = asks if order.side == Side.BUY else bids
        total = ZERO
        for price, size in levels:
            if (order.side == Side.BUY and price > order.price) or (order.side == Side.SELL and price < order.price):
                break
            total += size
        return total

    def _take(self, instrument: Instrument, order: Order, limit: Decimal | None) -> None:
        """Walks the synthetic book as a taker, within limit when given."""
        bids, asks = self.book(order.symbol)
        levels = asks if order.side == Side.BUY else bids
        for price, size in levels:
            if limit is not None and (
                (order.side == Side.BUY and price > limit) or (order.side == Side.SELL and price < limit)
            ):
                break
            if order.quote_quantity and not order.quantity:
                spent = order.cumulative_quote
                qty = ((order.quote_quantity - spent) / price).quantize(instrument.step_size, ROUND_DOWN)
                qty = min(qty, size)
            else:
                qty = min(size, order.remaining)
            if qty <= ZERO or not self._fill(instrument, order, price, qty, is_maker=False):
                break
            if order.status == Status.FILLED:
                break

    def _finish_taker(self, order: Order) -> None:
        if order.is_open:
            quote_done = order.quote_quantity and not order.quantity and order.executed_qty > ZERO
            order.status = Status.FILLED if quote_done else Status.EXPIRED
            if order.quote_quantity and not order.quantity:
                order.quantity = order.executed_qty
            self._close(order)

    def _fill(self, instrument: Instrument, order: Order, price: Decimal, qty: Decimal, *, is_maker: bool) -> bool:
        now = self.clock()
        if order.order_list_id >= 0:
            self._cancel_siblings(order)  # first: the list's shared lock may sit on the sibling
        if order.side == Side.BUY:
            paid, received, receive_asset = price * qty, qty, instrument.base
            if not self._spend(order, instrument.quote, paid):
                return False
        else:
            paid, received, receive_asset = qty, price * qty, instrument.quote
            if not self._spend(order, instrument.base, paid):
                return False
        commission = (received * self.fee_rate).quantize(COMMISSION_UNIT)
        self.accounts[order.account_id].balance(receive_asset).free += received - commission
        fill = Fill(
            self.next_trade_id,
            order.order_id,
            order.account_id,
            order.symbol,
            order.side,
            price,
            qty,
            commission,
            receive_asset,
            now,
            is_maker,
            order.order_list_id,
        )
        self.next_trade_id += 1
        self.fills.append(fill)
        order.fills.append(fill)
        order.executed_qty += qty
        order.cumulative_quote += price * qty
        order.update_time = now
        done = order.executed_qty >= order.quantity if order.quantity else False
        order.status = Status.FILLED if done else Status.PARTIALLY_FILLED
        if done:
            self._close(order)
        return True

    def _close(self, order: Order) -> None:
        self._release(order)
        self._open_by_client.pop((order.account_id, order.symbol, order.client_order_id), None)
        order.update_time = self.clock()
        if order.order_list_id >= 0:
            order_list = self.order_lists[order.order_list_id]
            if all(not self.orders[i].is_open for i in order_list.order_ids if i in self.orders):
                order_list.status = "ALL_DONE"
                order_list.update_time = order.update_time
        self._notify(order)

    def _cancel_siblings(self, order: Order) -> None:
        order_list = self.order_lists[order.order_list_id]
        for sibling_id in order_list.order_ids:
            sibling = self.orders.get(sibling_id)
            if sibling is not None and sibling_id != order.order_id and sibling.is_open:
                # The shared lock moves to the executing leg so its fills draw on it.
                if sibling.locked > ZERO and sibling.lock_asset:
                    order.lock_asset, order.locked = sibling.lock_asset, order.locked + sibling.locked
                    sibling.locked = ZERO
                sibling.status = Status.EXPIRED
                self._close(sibling)

    def on_print(self, symbol: str, price: Decimal, qty: Decimal) -> list[Order]:
        """A market trade at price: triggers stops, fills resting limits it reaches. Returns touched orders."""
        instrument = self.instruments.get(symbol)
        if instrument is None:
            return []
        touched = []
        for order in [o for o in self.orders.values() if o.symbol == symbol and o.is_open]:
            if not order.is_open:  # an OCO sibling closed earlier in this loop
                continue
            if order.type in STOP_TYPES and not order.triggered:
                if (
                    trailing.trail(order, price, self.clock())
                    if order.trailing_delta
                    else stop_triggered(order.type, order.side, order.stop_price, price)
                ):
                    self._trigger(instrument, order)
                    touched.append(order)
                continue
            if order.type in LIMIT_PRICED and self._rest_fill(instrument, order, price, qty):
                touched.append(order)
        return touched

    def _trigger(self, instrument: Instrument, order: Order) -> None:
        order.triggered = True
        order.working_time = self.clock()
        if order.order_list_id >= 0:
            self._cancel_siblings(order)
        if order.type in (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT):
            self._take(instrument, order, limit=None)
            self._finish_taker(order)
        else:
            self._take(instrument, order, limit=order.price)
            if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                self._finish_taker(order)
        self._notify(order)

    def _rest_fill(self, instrument: Instrument, order: Order, price: Decimal, qty: Decimal) -> bool:
        """Through the limit: fills entirely; touching it: fills up to the printed size."""
        if order.side == Side.BUY:
            through, touch = price < order.price, price == order.price
        else:
            through, touch = price > order.price, price == order.price
        if not (through or touch):
            return False
        size = order.remaining if through else min(order.remaining, qty)
        if size <= ZERO:
            return False
        filled = self._fill(instrument, order, order.price, size, is_maker=True)
        self._notify(order)
        return filled

    # --- cancel and query -----------------------------------------------------------------

    def find(
        self, account_id: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        self.instrument(symbol)
        order = None
        if order_id is not None:
            order = self.orders.get(order_id)
        elif client_order_id is not None:
            open_id = self._open_by_client.get((account_id, symbol, client_order_id))
            if open_id is not None:
                order = self.orders[open_id]
            else:
                order = next(
                    (
                        o
                        for o in reversed(self.orders.values())
                        if o.account_id == account_id and o.symbol == symbol and o.client_order_id == client_order_id
                    ),
                    None,
                )
        if order is None or order.account_id != account_id or order.symbol != symbol:
            raise EngineError(EngineError.UNKNOWN_ORDER, "Order does not exist.")
        return order

    def cancel(
        self, account_id: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        order = self.find(account_id, symbol, order_id, client_order_id)
        if not order.is_open:
            raise EngineError(EngineError.UNKNOWN_ORDER, "Unknown order sent.")
        order.status = Status.CANCELED
        if order.order_list_id >= 0:
            for sibling_id in self.order_lists[order.order_list_id].order_ids:
                sibling = self.orders[sibling_id]
                if sibling_id != order.order_id and sibling.is_open:
                    sibling.status = Status.CANCELED
                    self._close(sibling)
        self._close(order)
        return order

    def cancel_all(self, account_id: str, symbol: str) -> list[Order]:
        self.instrument(symbol)
        canceled = []
        for order in self.open_orders(account_id, symbol):
            if order.is_open:
                canceled.append(self.cancel(account_id, symbol, order.order_id))
        return canceled

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.account_id == account_id and o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def all_orders(self, account_id: str, symbol: str) -> list[Order]:
        return [o for o in self.orders.values() if o.account_id == account_id and o.symbol == symbol]

    def account_fills(self, account_id: str, symbol: str) -> list[Fill]:
        return [f for f in self.fills if f.account_id == account_id and f.symbol == symbol]

    def restore_index(self) -> None:
        """Rebuilds the open-orders-by-client-id index after orders were loaded from disk."""
        self._open_by_client = {
            (o.account_id, o.symbol, o.client_order_id): o.order_id for o in self.orders.values() if o.is_open
        }

    def _notify(self, order: Order) -> None:
        for listener in self.listeners:
            listener(order)

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MarginEngine: the example venue's margin engine (Conclave issue 17, examples/venue)
/// @notice A minimal but honest margin engine for one perpetual market and cash-settled European options on the same
/// underlying, with the chain's native coin as collateral.
///
/// Units: collateral in wei; sizes and option amounts in units of the underlying with 18 decimals (1e18 = one unit);
/// the oracle price in wei per whole unit of the underlying. A position's notional is |size| * price / 1e18, its PnL
/// size * (price - entryPrice) / 1e18, an account's equity its collateral plus its PnL.
///
/// The venue's collateral pool is the counterparty of every position and the writer of every option: what a trader
/// gains the pool pays, what a trader loses the pool keeps, and only the treasury (a Safe held by the venue's owners)
/// can release collateral out of the pool. Roles: the admin grants the keeper and price-feeder roles and names the
/// treasury; a price feeder sets the oracle price; a keeper liquidates accounts below maintenance margin, settles
/// option series at expiry and may exercise on a holder's behalf.
contract MarginEngine {
    uint256 public constant BPS = 10_000;
    /// @notice Equity needed to open a position or withdraw collateral: 10 % of notional.
    uint256 public constant INITIAL_MARGIN_BPS = 1_000;
    /// @notice Below this equity (5 % of notional) an account can be liquidated.
    uint256 public constant MAINTENANCE_MARGIN_BPS = 500;
    /// @notice Taken from a liquidated account into the pool: 1 % of notional.
    uint256 public constant LIQUIDATION_FEE_BPS = 100;
    /// @notice A price older than this is not used.
    uint256 public constant MAX_PRICE_AGE = 1 hours;
    uint256 private constant ONE = 1e18;

    struct Position {
        int256 size;
        uint256 entryPrice;
    }

    struct Series {
        bool isCall;
        uint256 strike;
        uint256 expiry;
        uint256 premium;
        bool settled;
        uint256 settlementPrice;
    }

    address public admin;
    address public treasury;
    mapping(address => bool) public isKeeper;
    mapping(address => bool) public isPriceFeeder;

    uint256 public price;
    uint256 public priceUpdatedAt;
    uint256 public pool;

    mapping(address => uint256) public collateral;
    mapping(address => Position) public positions;
    Series[] private _series;
    mapping(uint256 => mapping(address => uint256)) public optionBalance;

    uint256 private _entered;

    event RoleSet(string role, address indexed account, bool allowed);
    event TreasurySet(address indexed newTreasury);
    event PriceSet(uint256 newPrice, uint256 timestamp);
    event Deposited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event PoolFunded(address indexed from, uint256 amount);
    event CollateralReleased(address indexed to, uint256 amount);
    event PositionOpened(address indexed account, int256 size, uint256 entryPrice);
    event PositionClosed(address indexed account, int256 size, uint256 exitPrice, int256 pnl);
    event Liquidated(address indexed account, address indexed keeper, int256 size, uint256 atPrice, uint256 fee);
    event SeriesCreated(uint256 indexed seriesId, bool isCall, uint256 strike, uint256 expiry, uint256 premium);
    event OptionBought(uint256 indexed seriesId, address indexed buyer, uint256 amount, uint256 cost);
    event Settled(uint256 indexed seriesId, uint256 settlementPrice);
    event Exercised(uint256 indexed seriesId, address indexed holder, uint256 amount, uint256 payout);

    error NotAdmin();
    error NotKeeper();
    error NotPriceFeeder();
    error NotTreasury();
    error ZeroAddress();
    error ZeroAmount();
    error NoPrice();
    error StalePrice();
    error InsufficientCollateral();
    error InsufficientMargin();
    error InsufficientPool();
    error PositionOpen();
    error NoPosition();
    error NotLiquidatable();
    error UnknownSeries();
    error BadExpiry();
    error Expired();
    error NotExpired();
    error AlreadySettled();
    error NoPriceSinceExpiry();
    error NotSettled();
    error NothingToExercise();
    error TransferFailed();
    error Reentered();

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyKeeper() {
        if (!isKeeper[msg.sender]) revert NotKeeper();
        _;
    }

    modifier nonReentrant() {
        if (_entered != 0) revert Reentered();
        _entered = 1;
        _;
        _entered = 0;
    }

    constructor() {
        admin = msg.sender;
    }

    // ---- Roles ----

    function setKeeper(address account, bool allowed) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        isKeeper[account] = allowed;
        emit RoleSet("keeper", account, allowed);
    }

    function setPriceFeeder(address account, bool allowed) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        isPriceFeeder[account] = allowed;
        emit RoleSet("price-feeder", account, allowed);
    }

    /// @notice Names the treasury (the Safe) that alone can release collateral from the pool.
    function setTreasury(address newTreasury) external onlyAdmin {
        if (newTreasury == address(0)) revert ZeroAddress();
        treasury = newTreasury;
        emit TreasurySet(newTreasury);
    }

    // ---- Oracle ----

    function setPrice(uint256 newPrice) external {
        if (!isPriceFeeder[msg.sender]) revert NotPriceFeeder();
        if (newPrice == 0) revert ZeroAmount();
        price = newPrice;
        priceUpdatedAt = block.timestamp;
        emit PriceSet(newPrice, block.timestamp);
    }

    function _currentPrice() internal view returns (uint256) {
        if (price == 0) revert NoPrice();
        if (block.timestamp > priceUpdatedAt + MAX_PRICE_AGE) revert StalePrice();
        return price;
    }

    // ---- Collateral and the pool ----

    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        collateral[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Withdraws free collateral: with a position open, what stays must meet the initial margin.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (amount > collateral[msg.sender]) revert InsufficientCollateral();
        collateral[msg.sender] -= amount;
        if (positions[msg.sender].size != 0 && !_meetsMargin(msg.sender, INITIAL_MARGIN_BPS)) revert InsufficientMargin();
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    function fundPool() external payable {
        if (msg.value == 0) revert ZeroAmount();
        pool += msg.value;
        emit PoolFunded(msg.sender, msg.value);
    }

    /// @notice Moves collateral out of the pool; only the treasury (a Safe: a quorum of its owners) can.
    function releaseCollateral(address to, uint256 amount) external nonReentrant {
        if (msg.sender != treasury || treasury == address(0)) revert NotTreasury();
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (amount > pool) revert InsufficientPool();
        pool -= amount;
        emit CollateralReleased(to, amount);
        _send(to, amount);
    }

    function _send(address to, uint256 amount) internal {
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---- Perpetual ----

    /// @notice Opens a position of `size` (positive long, negative short) at the oracle price; it must meet the initial margin.
    function openPosition(int256 size) external {
        if (size == 0) revert ZeroAmount();
        if (positions[msg.sender].size != 0) revert PositionOpen();
        uint256 p = _currentPrice();
        positions[msg.sender] = Position(size, p);
        if (!_meetsMargin(msg.sender, INITIAL_MARGIN_BPS)) revert InsufficientMargin();
        emit PositionOpened(msg.sender, size, p);
    }

    function closePosition() external {
        Position memory pos = positions[msg.sender];
        if (pos.size == 0) revert NoPosition();
        _close(msg.sender, pos, _currentPrice(), 0);
    }

    /// @notice Closes an account below maintenance margin at the oracle price, charging the liquidation fee to the pool.
    function liquidate(address account) external onlyKeeper {
        Position memory pos = positions[account];
        if (pos.size == 0) revert NoPosition();
        uint256 p = _currentPrice();
        if (!_isLiquidatable(account, pos, p)) revert NotLiquidatable();
        uint256 fee = (_notional(pos, p) * LIQUIDATION_FEE_BPS) / BPS;
        _close(account, pos, p, fee);
        emit Liquidated(account, msg.sender, pos.size, p, fee);
    }

    function equity(address account) external view returns (int256) {
        return _equity(account, positions[account], _currentPrice());
    }

    function maintenanceMargin(address account) external view returns (uint256) {
        return (_notional(positions[account], _currentPrice()) * MAINTENANCE_MARGIN_BPS) / BPS;
    }

    function isLiquidatable(address account) external view returns (bool) {
        Position memory pos = positions[account];
        return pos.size != 0 && _isLiquidatable(account, pos, _currentPrice());
    }

    function _isLiquidatable(address account, Position memory pos, uint256 p) internal view returns (bool) {
        return _equity(account, pos, p) < int256((_notional(pos, p) * MAINTENANCE_MARGIN_BPS) / BPS);
    }

    function _meetsMargin(address account, uint256 bps) internal view returns (bool) {
        Position memory pos = positions[account];
        uint256 p = _currentPrice();
        return _equity(account, pos, p) >= int256((_notional(pos, p) * bps) / BPS);
    }

    function _pnl(Position memory pos, uint256 p) internal pure returns (int256) {
        return (pos.size * (int256(p) - int256(pos.entryPrice))) / int256(ONE);
    }

    function _notional(Position memory pos, uint256 p) internal pure returns (uint256) {
        uint256 absSize = pos.size < 0 ? uint256(-pos.size) : uint256(pos.size);
        return (absSize * p) / ONE;
    }

    function _equity(address account, Position memory pos, uint256 p) internal view returns (int256) {
        return int256(collateral[account]) + _pnl(pos, p);
    }

    /// @dev Settles a position against the pool: the account's collateral becomes its equity less the fee (never below
    /// zero: a deficit is bad debt the pool absorbs), and the pool takes or pays the difference.
    function _close(address account, Position memory pos, uint256 p, uint256 fee) internal {
        delete positions[account];
        int256 pnl = _pnl(pos, p);
        int256 remaining = int256(collateral[account]) + pnl - int256(fee);
        uint256 before = collateral[account];
        uint256 afterClose = remaining > 0 ? uint256(remaining) : 0;
        if (afterClose > before) {
            uint256 paid = afterClose - before;
            if (paid > pool) revert InsufficientPool();
            pool -= paid;
        } else {
            pool += before - afterClose;
        }
        collateral[account] = afterClose;
        emit PositionClosed(account, pos.size, p, pnl);
    }

    // ---- Options ----

    /// @notice Lists a cash-settled European option series; the pool writes it and sells it at `premium` per unit.
    function createSeries(bool isCall, uint256 strike, uint256 expiry, uint256 premium) external onlyAdmin returns (uint256 seriesId) {
        if (strike == 0) revert ZeroAmount();
        if (expiry <= block.timestamp) revert BadExpiry();
        seriesId = _series.length;
        _series.push(Series(isCall, strike, expiry, premium, false, 0));
        emit SeriesCreated(seriesId, isCall, strike, expiry, premium);
    }

    function seriesCount() external view returns (uint256) {
        return _series.length;
    }

    function series(uint256 seriesId) external view returns (Series memory) {
        return _getSeries(seriesId);
    }

    /// @notice Buys `amount` options of a series before expiry, paying the premium from collateral into the pool.
    function buyOption(uint256 seriesId, uint256 amount) external {
        Series storage s = _getSeries(seriesId);
        if (block.timestamp >= s.expiry) revert Expired();
        if (amount == 0) revert ZeroAmount();
        uint256 cost = (amount * s.premium) / ONE;
        if (cost > collateral[msg.sender]) revert InsufficientCollateral();
        collateral[msg.sender] -= cost;
        pool += cost;
        optionBalance[seriesId][msg.sender] += amount;
        if (positions[msg.sender].size != 0 && !_meetsMargin(msg.sender, INITIAL_MARGIN_BPS)) revert InsufficientMargin();
        emit OptionBought(seriesId, msg.sender, amount, cost);
    }

    /// @notice Fixes a series' settlement price at expiry from an oracle price set at or after the expiry (keeper: the settlement agent).
    function settle(uint256 seriesId) external onlyKeeper {
        Series storage s = _getSeries(seriesId);
        if (s.settled) revert AlreadySettled();
        if (block.timestamp < s.expiry) revert NotExpired();
        uint256 p = _currentPrice();
        if (priceUpdatedAt < s.expiry) revert NoPriceSinceExpiry();
        s.settled = true;
        s.settlementPrice = p;
        emit Settled(seriesId, p);
    }

    /// @notice Exercises a holder's options of a settled series: the intrinsic value goes from the pool into the holder's
    /// collateral. The holder may call it, or a keeper on the holder's behalf (automatic exercise).
    function exercise(uint256 seriesId, address holder) external {
        if (msg.sender != holder && !isKeeper[msg.sender]) revert NotKeeper();
        Series storage s = _getSeries(seriesId);
        if (!s.settled) revert NotSettled();
        uint256 amount = optionBalance[seriesId][holder];
        if (amount == 0) revert NothingToExercise();
        optionBalance[seriesId][holder] = 0;
        uint256 intrinsic = s.isCall
            ? (s.settlementPrice > s.strike ? s.settlementPrice - s.strike : 0)
            : (s.strike > s.settlementPrice ? s.strike - s.settlementPrice : 0);
        uint256 payout = (intrinsic * amount) / ONE;
        if (payout > pool) revert InsufficientPool();
        pool -= payout;
        collateral[holder] += payout;
        emit Exercised(seriesId, holder, amount, payout);
    }

    function _getSeries(uint256 seriesId) internal view returns (Series storage) {
        if (seriesId >= _series.length) revert UnknownSeries();
        return _series[seriesId];
    }
}

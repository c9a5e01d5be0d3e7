"""`make demo`: curate a text-to-SQL dataset the project generates itself, with known defects injected.

The generator builds a small shop database in SQLite, writes questions whose gold SQL runs on it, holds
out an evaluation split, and then spoils the training split on purpose: exact and paraphrased duplicates,
SQL in inconsistent case and spacing, empty answers, placeholder inputs, and evaluation examples copied
into training. `defects.json` records where each defect sits and which step must catch it, so the demo
can check the curation rather than just show it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lmtailor.io import write_jsonl
from lmtailor.steps.decontaminate import ngram_keys
from lmtailor.steps.normalize import canonical_sql

SCHEMA = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
    "city TEXT NOT NULL, country TEXT NOT NULL, signup_date TEXT NOT NULL);\n"
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, category TEXT NOT NULL, "
    "price REAL NOT NULL, stock INTEGER NOT NULL);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "order_date TEXT NOT NULL, status TEXT NOT NULL);\n"
    "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), "
    "product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL, unit_price REAL NOT NULL);"
)

CITIES = {"Paris": "France", "Lyon": "France", "Berlin": "Germany", "Munich": "Germany", "Madrid": "Spain",
          "Seville": "Spain", "Rome": "Italy", "Milan": "Italy", "Lisbon": "Portugal", "Porto": "Portugal",
          "Dublin": "Ireland", "Vienna": "Austria"}
FIRST = ["Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
         "Lars", "Maya", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tessa", "Umberto", "Vera",
         "Wendell", "Ximena", "Yusuf", "Zara", "Arthur", "Beatriz", "Conor", "Daphne", "Emil", "Fiona",
         "Gustavo", "Helga", "Ivan", "Julia", "Kenji", "Leonie", "Marco", "Nora", "Otto", "Paloma", "Rafael",
         "Sofia", "Tobias", "Ursula", "Viktor", "Wanda", "Yannick", "Zoltan"]
LAST = ["Martin", "Keller", "Dubois", "Petrov", "Rossi", "Haddad", "Lindqvist", "Moreau", "Silva", "Becker",
        "Tanaka", "Nilsen", "Okafor", "Sharma", "Fischer", "Iyer", "Laurent", "Garcia", "Mansour", "Visser",
        "Bianchi", "Novak", "Brooks", "Herrera", "Demir", "Khan", "Walsh", "Costa", "Murphy", "Andersen",
        "Weber", "Campbell", "Ortega", "Berg", "Popescu", "Conti", "Sato", "Wolff", "Ferrari", "Quinn",
        "Braun", "Navarro", "Pereira", "Marino", "Schulz", "Horvat", "Kowalski", "Lambert", "Fontaine", "Eriksen"]
PRODUCTS = {
    "Books": ["Atlas of Rivers", "Pocket Cookbook", "Mystery Anthology", "Poetry Collection",
              "Travel Guide to Norway", "Illustrated Dictionary"],
    "Electronics": ["Wireless Earbuds", "Portable Charger", "Bluetooth Speaker", "Smart Thermostat",
                    "Action Camera", "Mechanical Keyboard", "Ebook Reader"],
    "Garden": ["Watering Can", "Pruning Shears", "Bird Feeder", "Compost Bin", "Hose Reel", "Seed Starter Kit"],
    "Toys": ["Wooden Train Set", "Puzzle Cube", "Stunt Kite", "Plush Bear", "Building Blocks", "Toy Drone"],
    "Kitchen": ["Copper Kettle", "Chef Knife", "Cast Iron Skillet", "Pepper Mill", "Espresso Maker",
                "Salad Spinner", "Bread Tin"],
    "Sports": ["Yoga Mat", "Tennis Racket", "Climbing Rope", "Running Shoes", "Cycling Helmet", "Dumbbell Pair"],
    "Clothing": ["Wool Scarf", "Rain Jacket", "Linen Shirt", "Denim Jeans", "Leather Gloves", "Sun Hat"],
    "Beauty": ["Lavender Soap", "Face Serum", "Hair Dryer", "Lip Balm", "Bath Salts", "Nail Kit"],
}
STATUSES = ["pending", "shipped", "delivered", "cancelled", "returned"]
YEARS = ["2022", "2023", "2024"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


# ---------------------------------------------------------------- the database


@dataclass
class Shop:
    """The rows of the demo database, kept in Python so templates can pick values that exist."""

    customers: list[tuple] = field(default_factory=list)
    products: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    items: list[tuple] = field(default_factory=list)


def build_shop(rng: random.Random) -> Shop:
    shop = Shop()
    firsts, lasts = FIRST[:], LAST[:]
    rng.shuffle(lasts)
    cities = list(CITIES)
    for i, (first, last) in enumerate(zip(firsts, lasts, strict=True), 1):
        city = cities[(i - 1) % len(cities)] if i <= 2 * len(cities) else rng.choice(cities)
        signup = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        shop.customers.append((i, f"{first} {last}", f"{first}.{last}@example.com".lower(), city, CITIES[city], signup))
    pid = 0
    for category, names in PRODUCTS.items():
        for name in names:
            pid += 1
            shop.products.append((pid, name, category, round(rng.uniform(4, 180), 2), rng.randint(0, 60)))
    buyers = rng.sample(range(1, len(shop.customers) + 1), 42)
    sold = rng.sample(shop.products, 42)
    for oid in range(1, 81):
        date = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        status = rng.choices(STATUSES, weights=[2, 3, 6, 1, 1])[0]
        shop.orders.append((oid, buyers[(oid - 1) % len(buyers)] if oid <= len(buyers) else rng.choice(buyers),
                            date, status))
        for product in rng.sample(sold, rng.randint(1, 3)):
            shop.items.append((len(shop.items) + 1, oid, product[0], rng.randint(1, 5), product[3]))
    return shop


def write_db(shop: Shop, path: Path) -> sqlite3.Connection:
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", shop.customers)
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", shop.products)
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", shop.orders)
    db.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", shop.items)
    db.commit()
    return db


# ---------------------------------------------------------------- question templates


@dataclass(frozen=True)
class Template:
    """One kind of question: several phrasings, the gold SQL, and the parameter values it can take.

    Every parameter set names an entity (a city, a customer, a product...): questions that differ only in
    a number are near-identical to a sentence embedding, and would rightly be flagged as duplicates.
    """

    name: str
    phrasings: tuple[str, ...]
    sql: str
    params: Callable[[Shop, random.Random], list[dict[str, Any]]]


def _cities(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    return [{"city": c} for c in CITIES]


def _countries(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    return [{"country": c} for c in dict.fromkeys(CITIES.values())]


def _categories(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    return [{"category": c} for c in PRODUCTS]


def _customers(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    return [{"customer": c[1]} for c in shop.customers]


def _products(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    return [{"product": p[1]} for p in shop.products]


def _with(base: Callable[[Shop, random.Random], list[dict[str, Any]]], **choices: list[Any]):
    """Each base entity with one random value per extra parameter."""
    def params(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
        return [{**p, **{k: rng.choice(v) for k, v in choices.items()}} for p in base(shop, rng)]
    return params


TEMPLATES = [
    Template("customers_in_city", (
        "List the names and email addresses of every customer who lives in {city}, ordered by name.",
        "Which customers are based in the city of {city}? Give each one's name and email, sorted by name.",
        "Show the name and email of all customers located in {city}, in alphabetical order of name."),
        "select name, email from customers where city = '{city}' order by name", _cities),
    Template("count_customers_country", (
        "How many customers in the shop database come from {country}?",
        "Count the registered customers whose country is recorded as {country}.",
        "What is the number of customers living in {country} according to the customers table?"),
        "select count(*) from customers where country = '{country}'", _countries),
    Template("signups_since", (
        "Which customers from {city} signed up on or after {date}? Return their names and signup dates.",
        "Find the {city} customers who created their account no earlier than {date}, with the date they joined.",
        "Give the names and signup dates of customers in {city} whose signup date is {date} or later."),
        "select name, signup_date from customers where city = '{city}' and signup_date >= '{date}' "
        "order by signup_date", _with(_cities, date=["2022-01-01", "2022-06-01", "2023-01-01"])),
    Template("customer_email", (
        "What is the email address on file for the customer named {customer}?",
        "Look up the contact email we have stored for {customer} in the customers table.",
        "Retrieve the email of the shopper called {customer} from the customer records."),
        "select email from customers where name = '{customer}'", _customers),
    Template("customer_location", (
        "In which city and country does the customer {customer} live, according to our records?",
        "Where is {customer} located? Return the city and the country from the customer record.",
        "Tell me the home city and country registered for the customer {customer}."),
        "select city, country from customers where name = '{customer}'", _customers),
    Template("cities_in_country", (
        "Which cities in {country} have customers, and how many customers does each of those cities have?",
        "For every city in {country}, count how many customers live there and show the city with its count.",
        "Break down the customers from {country} by city, giving the number of customers per city."),
        "select city, count(*) as customers from customers where country = '{country}' group by city "
        "order by customers desc", _countries),
    Template("signups_country_year", (
        "How many customers from {country} created their account at some point during the year {year}?",
        "Count the customers whose country is {country} and whose signup date falls in {year}.",
        "What number of {country} customers joined the shop in {year}, based on their signup date?"),
        "select count(*) from customers where country = '{country}' and strftime('%Y', signup_date) = '{year}'",
        _with(_countries, year=YEARS)),
    Template("category_under_price", (
        "Which {category} products cost less than {price} dollars? List their names and prices from cheapest up.",
        "Show every product in the {category} category priced below {price}, with its price, cheapest first.",
        "Find the {category} items that are cheaper than {price} and give their names and prices in ascending order."),
        "select name, price from products where category = '{category}' and price < {price} order by price",
        _with(_categories, price=[60, 80, 100, 120])),
    Template("most_expensive_in_category", (
        "What are the {n} most expensive products in the {category} category, with their prices?",
        "Name the top {n} {category} products by price, most expensive first, and show each price.",
        "Give the {n} priciest items in the {category} category together with what they cost."),
        "select name, price from products where category = '{category}' order by price desc limit {n}",
        _with(_categories, n=[2, 3])),
    Template("low_stock", (
        "Find the {category} products with fewer than {stock} units left in stock, showing the stock level.",
        "Which products in the {category} category are running low, with under {stock} units in stock?",
        "List {category} products whose stock count is below {stock}, along with how many units remain."),
        "select name, stock from products where category = '{category}' and stock < {stock} order by stock",
        _with(_categories, stock=[20, 30, 40])),
    Template("product_price_stock", (
        "How much does the product called {product} cost, and how many units of it are in stock?",
        "What are the current price and the stock level of the {product} in the products table?",
        "Give me the price of {product} together with the number of units we still have in stock."),
        "select price, stock from products where name = '{product}'", _products),
    Template("average_price_category", (
        "What is the average price of the products in the {category} category, rounded to two decimals?",
        "Compute the mean product price for the {category} category, rounded to 2 decimal places.",
        "On average, how much does a product from the {category} category cost? Round to two decimals."),
        "select round(avg(price), 2) from products where category = '{category}'", _categories),
    Template("products_name_word", (
        "Which products have the word {word} somewhere in their name? Show their names and categories.",
        "Search the product catalogue for names containing {word} and return each name with its category.",
        "List every product whose name includes the text {word}, together with the category it belongs to."),
        "select name, category from products where name like '%{word}%'",
        lambda shop, rng: [{"word": p[1].split()[-1]} for p in shop.products]),
    Template("stock_value_category", (
        "What is the total value of the {category} stock, counting price times units in stock for each product?",
        "Calculate how much the {category} inventory is worth by summing price multiplied by stock.",
        "Sum up price times stock over all {category} products to get the value of that inventory."),
        "select round(sum(price * stock), 2) from products where category = '{category}'", _categories),
    Template("orders_of_customer", (
        "List the id, date and status of every order placed by {customer}, newest order first.",
        "Show all orders that {customer} has made, with order id, order date and status, most recent first.",
        "Which orders belong to the customer {customer}? Give id, date and status sorted from newest to oldest."),
        "select o.id, o.order_date, o.status from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}' order by o.order_date desc", _customers),
    Template("orders_status_year", (
        "How many orders placed in {year} currently have the status {status}?",
        "Count the {year} orders whose status is {status} in the orders table.",
        "What is the number of orders from the year {year} that are marked as {status}?"),
        "select count(*) from orders where status = '{status}' and strftime('%Y', order_date) = '{year}'",
        lambda shop, rng: [{"status": s, "year": rng.choice(YEARS)} for s in STATUSES]),
    Template("customer_total_spent", (
        "How much money has {customer} spent in total across all of their orders?",
        "Compute the total amount {customer} has paid, summing quantity times unit price over every order item.",
        "What is the lifetime spending of the customer {customer}, based on all the items they ordered?"),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = oi.order_id "
        "join customers as c on c.id = o.customer_id where c.name = '{customer}'", _customers),
    Template("last_order_date", (
        "When did {customer} place their most recent order? Return the latest order date.",
        "Find the date of the last purchase made by the customer {customer}.",
        "What is the newest order date recorded for {customer} in the orders table?"),
        "select max(o.order_date) from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}'", _customers),
    Template("customers_with_status", (
        "Which customers have at least one order whose status is {status}? List each name only once.",
        "Give the distinct names of customers who own an order currently marked {status}.",
        "Find every customer with one or more {status} orders, without repeating names."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id "
        "where o.status = '{status}' order by c.name", lambda shop, rng: [{"status": s} for s in STATUSES]),
    Template("orders_in_month", (
        "How many orders were placed in {month} {year}, counting every order regardless of status?",
        "Count all the orders whose order date falls within {month} of {year}.",
        "What was the number of orders made during {month} {year} according to the orders table?"),
        "select count(*) from orders where strftime('%Y-%m', order_date) = '{year}-{mm}'",
        lambda shop, rng: [{"month": m, "mm": f"{i:02d}", "year": rng.choice(YEARS)} for i, m in enumerate(MONTHS, 1)]),
    Template("buyers_of_product", (
        "Which customers have bought the {product}? Give their names without duplicates.",
        "List the distinct customers who ordered at least one {product}, sorted by name.",
        "Who purchased the product {product}? Show each buyer's name once, alphabetically."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id join order_items "
        "as oi on oi.order_id = o.id join products as p on p.id = oi.product_id where p.name = '{product}' "
        "order by c.name", _products),
    Template("units_sold_product", (
        "How many units of the {product} have been sold in total across all orders?",
        "What is the total quantity of {product} ordered by customers, summed over every order line?",
        "Add up the quantities of {product} in all order items to get the number of units sold."),
        "select sum(oi.quantity) from order_items as oi join products as p on p.id = oi.product_id "
        "where p.name = '{product}'", _products),
    Template("revenue_category_year", (
        "What was the total revenue from {category} products in {year}, using quantity times unit price?",
        "Compute the {category} sales revenue for orders dated in {year}, as quantity multiplied by unit price.",
        "How much money did {category} products bring in during {year}? Sum quantity times unit price."),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = oi.order_id "
        "join products as p on p.id = oi.product_id where p.category = '{category}' "
        "and strftime('%Y', o.order_date) = '{year}'", _with(_categories, year=YEARS)),
    Template("city_buyers_category", (
        "Which customers from {city} have ordered something from the {category} category?",
        "List the {city} customers who bought at least one {category} product, each name once.",
        "Find shoppers living in {city} with an order that contains a {category} item."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id join order_items "
        "as oi on oi.order_id = o.id join products as p on p.id = oi.product_id where c.city = '{city}' "
        "and p.category = '{category}'",
        lambda shop, rng: [{"city": c, "category": rng.choice(list(PRODUCTS))} for c in CITIES]),
    Template("top_spenders_country", (
        "Who are the {n} biggest spenders among customers from {country}, and how much did each spend?",
        "Rank the customers living in {country} by total spending and return the top {n} with their totals.",
        "Give the {n} customers from {country} who spent the most money, along with the amount spent."),
        "select c.name, sum(oi.quantity * oi.unit_price) as spent from customers as c join orders as o "
        "on o.customer_id = c.id join order_items as oi on oi.order_id = o.id where c.country = '{country}' "
        "group by c.id order by spent desc limit {n}", _with(_countries, n=[2, 3])),
    Template("avg_order_value_country", (
        "What is the average order value for customers living in {country}, where an order's value is the sum "
        "of its items?",
        "Compute the mean total per order for orders placed by customers from {country}.",
        "On average, how much is an order worth when the customer comes from {country}?"),
        "select avg(total) from (select o.id, sum(oi.quantity * oi.unit_price) as total from orders as o "
        "join customers as c on c.id = o.customer_id join order_items as oi on oi.order_id = o.id "
        "where c.country = '{country}' group by o.id)", _countries),
    Template("products_bought_in_city", (
        "Which distinct products were bought by customers who live in {city}? Sort the product names.",
        "List every product that at least one customer from {city} has ordered, alphabetically.",
        "What products have shoppers based in {city} purchased? Give each product name once."),
        "select distinct p.name from products as p join order_items as oi on oi.product_id = p.id "
        "join orders as o on o.id = oi.order_id join customers as c on c.id = o.customer_id "
        "where c.city = '{city}' order by p.name", _cities),
    Template("never_ordered_category", (
        "Which {category} products have never been ordered by anyone?",
        "List the products in the {category} category that do not appear in any order item.",
        "Find {category} items with zero sales, meaning no order has ever included them."),
        "select name from products where category = '{category}' and id not in "
        "(select product_id from order_items)", _categories),
    Template("orders_by_status_country", (
        "Break down the orders of customers from {country} by status, with a count for each status.",
        "For customers in {country}, how many orders are there in each order status?",
        "Group the orders placed by {country} customers by their status and count the orders in every group."),
        "select o.status, count(*) from orders as o join customers as c on c.id = o.customer_id "
        "where c.country = '{country}' group by o.status", _countries),
    Template("best_seller_category", (
        "Which product in the {category} category has sold the most units, and how many units was that?",
        "Find the best-selling {category} product by total quantity ordered, with the quantity.",
        "What is the top {category} item measured by units sold? Return its name and the units."),
        "select p.name, sum(oi.quantity) as units from products as p join order_items as oi "
        "on oi.product_id = p.id where p.category = '{category}' group by p.id order by units desc limit 1",
        _categories),
    Template("customers_without_orders", (
        "Which customers in {city} have never placed a single order with the shop?",
        "List the {city} customers who have no orders at all in the orders table.",
        "Find shoppers from {city} that signed up but never bought anything."),
        "select name from customers where city = '{city}' and id not in (select customer_id from orders)",
        _cities),
    Template("orders_count_customer_year", (
        "How many orders did {customer} place during {year}, whatever their status?",
        "Count the orders made by the customer {customer} with an order date in {year}.",
        "What is the number of {year} orders that belong to {customer}?"),
        "select count(*) from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}' and strftime('%Y', o.order_date) = '{year}'", _with(_customers, year=YEARS)),
    Template("largest_order_customer", (
        "What was the largest single order placed by {customer}, measured by its total value?",
        "Find the id and value of the most expensive order {customer} has made.",
        "Which order of {customer} is worth the most? Return the order id and its total."),
        "select o.id, sum(oi.quantity * oi.unit_price) as total from orders as o join customers as c "
        "on c.id = o.customer_id join order_items as oi on oi.order_id = o.id where c.name = '{customer}' "
        "group by o.id order by total desc limit 1", _customers),
    Template("category_of_product", (
        "Which category does the product {product} belong to in our catalogue?",
        "Tell me the product category that {product} is listed under.",
        "What category is {product} filed in, according to the products table?"),
        "select category from products where name = '{product}'", _products),
    Template("distinct_buyers_category", (
        "How many different customers have bought at least one product from the {category} category?",
        "Count the distinct shoppers who ordered any {category} item.",
        "What number of unique customers purchased something in the {category} category?"),
        "select count(distinct o.customer_id) from orders as o join order_items as oi on oi.order_id = o.id "
        "join products as p on p.id = oi.product_id where p.category = '{category}'", _categories),
    Template("revenue_city", (
        "What is the total revenue generated by customers who live in {city}, over all their orders?",
        "Sum the value of every order item bought by {city} customers to get the revenue from that city.",
        "How much have shoppers based in {city} spent altogether, as quantity times unit price?"),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = oi.order_id "
        "join customers as c on c.id = o.customer_id where c.city = '{city}'", _cities),
    Template("pending_orders_city", (
        "Which orders from customers in {city} are still in status {status}? Show order id and customer name.",
        "List the {status} orders placed by shoppers from {city}, with the order id and who placed it.",
        "Find every order with status {status} whose customer lives in {city}; give id and customer name."),
        "select o.id, c.name from orders as o join customers as c on c.id = o.customer_id "
        "where c.city = '{city}' and o.status = '{status}'", _with(_cities, status=["pending", "shipped", "delivered"])),
]


# ---------------------------------------------------------------- clean examples


@dataclass
class Question:
    """A clean example: a question, its gold SQL (canonical), and where it came from."""

    template: str
    params: dict[str, Any]
    question: str
    sql: str

    def record(self) -> dict[str, str]:
        return {"instruction": self.question, "input": SCHEMA, "output": self.sql}


def gold_sql(sql: str) -> str:
    """The canonical form normalize will also produce; raises if canonicalising is not idempotent."""
    canonical = canonical_sql(sql, "sqlite")
    if canonical_sql(canonical, "sqlite") != canonical:
        raise ValueError(f"canonical SQL is not stable: {canonical}")
    return canonical


def questions(db: sqlite3.Connection, shop: Shop, rng: random.Random, per_template: int) -> list[Question]:
    """Up to `per_template` questions per template whose gold SQL runs and returns a non-empty answer."""
    out: list[Question] = []
    for t in TEMPLATES:
        params = list({json.dumps(p, sort_keys=True): p for p in t.params(shop, rng)}.values())
        rng.shuffle(params)
        taken = 0
        for p in params:
            if taken == per_template:
                break
            sql = gold_sql(t.sql.format(**p))
            try:
                rows = db.execute(sql).fetchall()
            except sqlite3.Error as e:
                raise ValueError(f"template {t.name}: gold SQL fails on the demo database: {e}\n{sql}") from None
            if not rows or all(v is None for v in rows[0]):
                continue
            out.append(Question(t.name, p, rng.choice(t.phrasings).format(**p), sql))
            taken += 1
    return out


def overlap_text(q: Question) -> str:
    """The text decontamination compares (instruction and output, as the demo recipe sets it)."""
    return f"{q.question}\n{q.sql}"

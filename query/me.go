package query

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
)

type meResponse struct {
	Role       string `json:"role"`
	ResellerID string `json:"reseller_id"`
	Revenue    bool   `json:"revenue"`
}

// me describes the caller's key: role, reseller ("" for the operator) and
// whether it sees revenue. Operators need no ?reseller= here.
func (q *Query) me(c *fiber.Ctx) error {
	p := principalOf(c)
	r := meResponse{Role: RoleReseller, ResellerID: p.reseller, Revenue: p.revenue}
	if p.operator {
		r.Role, r.ResellerID = RoleOperator, ""
	}
	return c.JSON(r)
}

// resellersSQL counts the organizations of every reseller that has one.
const resellersSQL = `SELECT reseller_id, uniqExact(org_id) AS organizations
FROM organizations
GROUP BY reseller_id
ORDER BY reseller_id`

// resellerSQL counts one reseller's organizations. Args: reseller.
const resellerSQL = `SELECT count() FROM (SELECT DISTINCT org_id FROM organizations WHERE reseller_id = ?)`

type resellerItem struct {
	ID            string `json:"id"`
	Organizations uint64 `json:"organizations"`
}

type resellersResponse struct {
	Resellers []resellerItem `json:"resellers"`
}

// resellers lists the resellers a key may pick: every reseller with
// organizations for the operator, only its own for a reseller key.
func (q *Query) resellers(c *fiber.Ctx) error {
	p := principalOf(c)
	resp := resellersResponse{Resellers: []resellerItem{}}
	if !p.operator {
		item := resellerItem{ID: p.reseller}
		if err := q.conn.QueryRow(c.UserContext(), resellerSQL, p.reseller).Scan(&item.Organizations); err != nil {
			return fmt.Errorf("resellers: %w", err)
		}
		resp.Resellers = append(resp.Resellers, item)
		return c.JSON(resp)
	}
	rows, err := q.conn.Query(c.UserContext(), resellersSQL)
	if err != nil {
		return fmt.Errorf("resellers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var item resellerItem
		if err := rows.Scan(&item.ID, &item.Organizations); err != nil {
			return fmt.Errorf("resellers: %w", err)
		}
		resp.Resellers = append(resp.Resellers, item)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("resellers: %w", err)
	}
	return c.JSON(resp)
}
